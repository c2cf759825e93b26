from kfp import dsl
from kfp.dsl import Artifact, Input, Model

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def register(
    grm: Input[Model],
    meta_rm: Input[Model],
    results: Input[Artifact],
    model_name: str,
    tracking_uri: str,
    parent_run_id: str,
    workdir: str,
) -> str:
    """Log the GRM bundle (model, spct.json voting defaults, meta RM) to MLflow and register it as ``challenger``.

    The bundle is assembled on the checkpoint volume (``workdir``) and uploaded once, to MLflow;
    it never passes through a KFP artifact (a 27B bundle is ~54 GB).
    """
    import tempfile
    from pathlib import Path

    from spct.pipeline.stages import Tracking, find_model, register_stage, resolve_dir
    from spct.registry.gate import GateMetrics

    meta_dir = resolve_dir(meta_rm.path)
    meta_dir = meta_dir / "model" if (meta_dir / "model").is_dir() else meta_dir
    gate = GateMetrics.from_file(Path(results.path) / "gate.json")
    root = Path(workdir) / parent_run_id / "register" if workdir else Path(tempfile.mkdtemp(prefix="spct-bundle-"))
    return register_stage(find_model(resolve_dir(grm.path)), meta_dir, gate, model_name, root,
                          Tracking(tracking_uri, parent_run_id))
