"""``mlflow.pyfunc`` loader for a logged GRM bundle: a judge over a DataFrame.

``mlflow.pyfunc.load_model("models:/NAME@champion").predict(df, params={"k": 4})``
with columns ``prompt`` (the user turn) and ``responses`` (a list of strings)
returns the voted ``scores``, the ``best`` index and how many samples ``parsed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class GRMPyfunc:
    def __init__(self, bundle_dir: Path) -> None:
        from spct.engine import Engine
        from spct.serving.bundle import resolve

        self.bundle = resolve(str(bundle_dir))
        self.engine = Engine.load(self.bundle.spec)
        self.meta_rm = None
        if self.bundle.meta_rm_dir is not None:
            from spct.grm.meta import load_meta_rm

            self.meta_rm = load_meta_rm(self.bundle.meta_rm_dir)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        from spct.engine import SamplingParams
        from spct.grm.judge import JudgeItem, judge
        from spct.types import user

        cfg = self.bundle.config
        p = {"k": cfg.k, "temperature": cfg.temperature, "seed": 0, "max_new_tokens": cfg.max_new_tokens, **(params or {})}
        k = int(p["k"])
        # MetaRM@k needs samples to choose among; the bundle's k_meta, or the paper's k/2.
        k_meta = (cfg.k_meta or max(1, k // 2)) if self.meta_rm is not None and k > 1 else None
        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        for col in ("prompt", "responses"):
            if col not in df.columns:
                raise ValueError(f"input needs a {col!r} column (got {list(df.columns)})")
        items = [JudgeItem([user(str(r.prompt))], [str(x) for x in r.responses], k=k, k_meta=k_meta) for r in df.itertuples()]
        sampling = SamplingParams(
            temperature=float(p["temperature"]), top_p=cfg.top_p, max_new_tokens=int(p["max_new_tokens"]), seed=int(p["seed"])
        )
        out = [j.verdict for j in judge(self.engine, items, sampling, meta_rm=self.meta_rm if k_meta else None)]
        return pd.DataFrame({"scores": [v.totals for v in out], "best": [v.best for v in out], "parsed": [v.used for v in out]})


def _load_pyfunc(data_path: str) -> GRMPyfunc:
    return GRMPyfunc(Path(data_path))
