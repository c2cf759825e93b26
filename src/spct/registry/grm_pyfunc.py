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
            from spct.registry.grm_model import load_meta_rm

            self.meta_rm = load_meta_rm(self.bundle.meta_rm_dir)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        import pandas as pd

        from spct.engine import SamplingParams
        from spct.grm.judge import JudgeItem, judge
        from spct.types import user

        cfg = self.bundle.config
        p = {"k": cfg.k, "temperature": cfg.temperature, "seed": 0, "max_new_tokens": cfg.max_new_tokens, **(params or {})}
        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        for col in ("prompt", "responses"):
            if col not in df.columns:
                raise ValueError(f"input needs a {col!r} column (got {list(df.columns)})")
        items = [JudgeItem(str(i), [user(str(r.prompt))], [str(x) for x in r.responses]) for i, r in enumerate(df.itertuples())]
        sampling = SamplingParams(
            temperature=float(p["temperature"]), top_p=cfg.top_p, max_new_tokens=int(p["max_new_tokens"]), seed=int(p["seed"])
        )
        k = int(p["k"])
        meta = self.meta_rm if k > 1 else None  # MetaRM@k needs samples to choose among
        out = judge(self.engine, items, k, sampling, meta_rm=meta, k_meta=cfg.k_meta if meta else None)
        return pd.DataFrame(
            {"scores": [v.totals for v, _ in out], "best": [v.best for v, _ in out], "parsed": [v.used for v, _ in out]}
        )


def _load_pyfunc(data_path: str) -> GRMPyfunc:
    return GRMPyfunc(Path(data_path))
