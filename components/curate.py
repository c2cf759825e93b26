from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from components.image import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE)
def curate(
    sources: list,
    limit: int,
    eval_fraction: float,
    tracking_uri: str,
    parent_run_id: str,
    curated: Output[Dataset],
    summary: Output[Markdown],
):
    """Load, normalise, deduplicate and split the sources: train/eval parquet + manifest.json."""
    import json
    from pathlib import Path

    from spct.pipeline.stages import Tracking, curate_stage

    out = Path(curated.path)
    result = curate_stage([str(s) for s in sources], out, Tracking(tracking_uri, parent_run_id),
                          limit=limit or None, eval_fraction=eval_fraction)
    curated.metadata.update({"format": "spct-curated", "counts": json.loads(json.dumps(result["counts"], default=str))})
    lines = ["# Curated data", "", "| split | examples |", "| --- | --- |"]
    lines += [f"| {k} | {v.get('total', v) if isinstance(v, dict) else v} |" for k, v in result["counts"].items()]
    lines += ["", "Dropped: " + (", ".join(f"{k} {v}" for k, v in result["drops"].items()) or "none")]
    Path(summary.path).write_text("\n".join(lines) + "\n")
