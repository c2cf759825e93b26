"""The trained GRM as an MLflow model: the serving bundle, logged as a pyfunc and registered.

The MLflow model directory holds ``MLmodel`` and the bundle one folder down
(``grm/``: Hugging Face model + tokenizer, ``spct.json`` voting defaults,
optional ``meta_rm/``), which is the layout :func:`spct.serving.bundle.resolve`
finds when serving ``models:/NAME@champion``. ``mlflow.pyfunc.load_model`` on the
same URI gives a judge through :mod:`spct.registry.grm_pyfunc`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spct.registry.gate import GateMetrics

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

BUNDLE_DIR = "grm"
# What the pyfunc needs at load time; listed explicitly because MLflow's inference
# of requirements pulls in packages (torchvision) this project does not use.
PIP_REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.*", "mlflow==3.17.2", "pydantic==2.14.*", "pyyaml>=6"]


def build_bundle(model_dir: str | Path, out: str | Path, *, meta_rm_dir: str | Path | None = None, **config: Any) -> Path:
    """Copy a trained model (+ meta RM) into ``out/grm`` with its ``spct.json``; returns the bundle folder."""
    from spct.serving.bundle import CONFIG_FILE, BundleConfig

    src = Path(model_dir)
    if not (src / "config.json").is_file():
        raise FileNotFoundError(f"{src}: no config.json; not a saved Hugging Face model")
    dst = Path(out) / BUNDLE_DIR
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "checkpoint-*", "*.jsonl"))
    cfg = BundleConfig(**config)
    if meta_rm_dir is not None and Path(meta_rm_dir).is_dir():
        shutil.copytree(meta_rm_dir, dst / "meta_rm", dirs_exist_ok=True)
        cfg = cfg.model_copy(update={"meta_rm": "meta_rm"})
    (dst / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2) + "\n")
    return dst


def signature() -> Any:
    """Input: ``prompt`` and ``responses``; output: summed ``scores`` and ``best``; params: k, temperature, seed."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    from spct.engine.sampler import SamplingParams

    DEFAULT = SamplingParams()  # the one place sampling defaults are declared

    return ModelSignature(
        inputs=Schema([ColSpec("string", "prompt"), ColSpec(Array("string"), "responses")]),
        outputs=Schema([ColSpec(Array("long"), "scores"), ColSpec("long", "best"), ColSpec("long", "parsed")]),
        params=ParamSchema(
            [ParamSpec("k", "long", 1), ParamSpec("temperature", "double", DEFAULT.temperature),
             ParamSpec("seed", "long", DEFAULT.seed), ParamSpec("max_new_tokens", "long", DEFAULT.max_new_tokens)]
        ),
    )


def log_grm(bundle_dir: str | Path, run_id: str, tracking_uri: str) -> "ModelInfo":
    """Log the bundle as a pyfunc model on ``run_id``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id):
        return mlflow.pyfunc.log_model(
            name=BUNDLE_DIR,
            loader_module="spct.registry.grm_pyfunc",
            data_path=str(bundle_dir),
            pip_requirements=PIP_REQUIREMENTS,
            signature=signature(),
        )


def register_grm(
    client: Any, name: str, info: "ModelInfo", metrics: GateMetrics | None, run_id: str, tags: dict[str, str] | None = None
) -> Any:
    """Register a logged GRM as a new version with its gate metrics; it gets the ``challenger`` alias."""
    from spct.registry.promotion import register_version

    return register_version(client, name, info.model_uri, metrics, run_id=run_id, tags=tags, model_id=info.model_id)
