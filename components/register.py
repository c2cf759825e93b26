from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def register(
    grm: Input[Model],
    meta_rm: Input[Model],
    results: Input[Artifact],
    model_name: str,
    tracking_uri: str,
    parent_run_id: str,
    bundle: Output[Model],
) -> str:
    """Log the GRM bundle (model, spct.json voting defaults, meta RM) to MLflow and register it as ``challenger``."""
    from pathlib import Path

    from spct.pipeline.stages import Tracking, find_model, register_stage, resolve_dir
    from spct.registry.gate import GateMetrics

    meta_dir = resolve_dir(meta_rm.path)
    meta_dir = meta_dir / "model" if (meta_dir / "model").is_dir() else meta_dir
    gate = GateMetrics.from_file(Path(results.path) / "gate.json")
    version = register_stage(find_model(resolve_dir(grm.path)), meta_dir, gate, model_name, Path(bundle.path),
                             Tracking(tracking_uri, parent_run_id))
    bundle.metadata.update({"registered_model": model_name, "version": version, "alias": "challenger"})
    return version
