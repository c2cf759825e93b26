from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def coldstart(
    profile: str,
    overrides: list,
    base_model: str,
    steps: int,
    tracking_uri: str,
    parent_run_id: str,
    workdir: str,
    model: Output[Model],
):
    """Optional bootstrap for small bases (template-critique SFT); ``steps=0`` passes the base model through."""
    from spct.pipeline.stages import Tracking, output_dir, pass_through, train_stage

    if steps <= 0:
        pass_through(model.path, base_model)
        model.metadata.update({"stage": "base", "spec": base_model})
        return
    out = output_dir(model.path, workdir, parent_run_id, "coldstart")
    train_stage("coldstart", profile, [*map(str, overrides), f"coldstart.steps={steps}"], base_model, out,
                Tracking(tracking_uri, parent_run_id))
    model.metadata.update({"framework": "transformers", "stage": "coldstart", "base_model": base_model})


@dsl.component(base_image=DEFAULT_IMAGE)
def rft(
    profile: str,
    overrides: list,
    base_model: str,
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
    model: Output[Model],
    metrics: Output[Metrics],
    init: Input[Model] = None,
):
    """Rejective fine-tuning: sample N critiques per item, keep the right ones (hinted where needed), SFT on them."""
    from spct.pipeline.stages import Tracking, job_settings, log_summary, model_spec, output_dir, resolve_dir, train_stage

    out = output_dir(model.path, workdir, parent_run_id, "rft")
    start = model_spec(init.path) if init is not None else base_model  # no cold-start task: the base model
    summary = train_stage("rft", profile, [str(o) for o in overrides], start, out, Tracking(tracking_uri, parent_run_id),
                          data=str(resolve_dir(curated.path) / "train.parquet"), nodes=nodes,
                          job=job_settings(cluster, image, node_selector, tolerations, job))
    log_summary(metrics, summary)
    model.metadata.update({"framework": "transformers", "stage": "rft", "init": start})


@dsl.component(base_image=DEFAULT_IMAGE)
def grpo(
    profile: str,
    overrides: list,
    init: Input[Model],
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
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Rule-based online RL (GRPO, +1/-1 rewards, KL to the RFT model) from the RFT model."""
    from spct.pipeline.stages import Tracking, find_model, job_settings, log_summary, output_dir, resolve_dir, train_stage

    out = output_dir(model.path, workdir, parent_run_id, "grpo")
    start = find_model(resolve_dir(init.path))
    summary = train_stage("grpo", profile, [str(o) for o in overrides], str(start), out, Tracking(tracking_uri, parent_run_id),
                          data=str(resolve_dir(curated.path) / "train.parquet"), nodes=nodes,
                          job=job_settings(cluster, image, node_selector, tolerations, job))
    log_summary(metrics, summary)
    model.metadata.update({"framework": "transformers", "stage": "grpo"})
