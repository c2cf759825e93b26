from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def evaluate(
    profile: str,
    overrides: list,
    grm: Input[Model],
    meta_rm: Input[Model],
    curated: Input[Dataset],
    coldstart_steps: int,
    tracking_uri: str,
    parent_run_id: str,
    metrics: Output[Metrics],
    report: Output[Markdown],
    scaling: Output[HTML],
    results: Output[Artifact],
    coldstart: Input[Model] = None,
):
    """Greedy, Voting@k and MetaRM@k on the gate set: report.json/.md, scaling.png, samples, gate.json.

    The items are checked against what this run trained on (``curated``'s train split, and the
    cold-start data when ``coldstart_steps`` > 0), which also fits the response-only baseline.
    With ``coldstart`` (the cold-start task's model), it is judged greedy beside the GRM on the same
    items, with the paired difference: what RFT and GRPO added."""
    import base64
    import shutil
    from pathlib import Path

    from spct.pipeline.stages import Tracking, evaluate_stage, find_model, resolve_dir, run_training_data

    out = Path(results.path)
    out.mkdir(parents=True, exist_ok=True)
    meta_dir = resolve_dir(meta_rm.path)
    meta_dir = meta_dir / "model" if (meta_dir / "model").is_dir() else meta_dir
    sets = [str(o) for o in overrides]
    train = run_training_data(resolve_dir(curated.path), profile, sets, coldstart=coldstart_steps > 0)
    start = find_model(resolve_dir(coldstart.path)) if coldstart is not None else None
    _, gate = evaluate_stage(find_model(resolve_dir(grm.path)), meta_dir, profile, sets, out,
                             Tracking(tracking_uri, parent_run_id), train_data=train, reference=start)
    metrics.log_metric("gate_accuracy", gate.accuracy)
    metrics.log_metric("gate_parse_rate", gate.parse_rate)
    shutil.copyfile(out / "report.md", report.path)
    png = base64.b64encode((out / "scaling.png").read_bytes()).decode()
    Path(scaling.path).write_text(f'<html><body><img alt="accuracy against k" src="data:image/png;base64,{png}"/></body></html>\n')
    results.metadata.update({"gate_set": gate.gate_set, "accuracy": gate.accuracy, "parse_rate": gate.parse_rate})
