from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def metarm(
    profile: str,
    overrides: list,
    grm: Input[Model],
    rft_model: Input[Model],
    curated: Input[Dataset],
    tracking_uri: str,
    parent_run_id: str,
    nodes: int,
    workdir: str,
    job: dict,
    cluster: dict,
    image: str,
    node_selector: dict,
    tolerations: list,
    meta_rm: Output[Model],
    metrics: Output[Metrics],
):
    """The meta RM: a scalar head trained (BCE) to tell right critiques from wrong ones."""
    from spct.pipeline.stages import Tracking, find_model, job_settings, log_summary, output_dir, resolve_dir, train_stage

    out = output_dir(meta_rm.path, workdir, parent_run_id, "metarm")
    samples = resolve_dir(rft_model.path) / "samples.jsonl"
    summary = train_stage(
        "metarm", profile, [str(o) for o in overrides], str(find_model(resolve_dir(grm.path))), out,
        Tracking(tracking_uri, parent_run_id), data=str(resolve_dir(curated.path) / "train.parquet"),
        samples=str(samples) if samples.is_file() else None, nodes=nodes, job=job_settings(cluster, image, node_selector, tolerations, job),
    )
    log_summary(metrics, summary)
    meta_rm.metadata.update({"framework": "torch", "stage": "metarm"})
