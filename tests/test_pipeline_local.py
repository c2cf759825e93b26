"""The whole DAG through kfp.local with the tiny profile, tracked in the embedded MLflow store."""

import json
import os
import socket

import pytest

from spct.registry import CHALLENGER, CHAMPION, client_for

# Keep every stage to seconds: the profile's cold start (format + a weak uppercase check), then a
# handful of items and one or two optimizer steps per stage.
FAST = [
    "rft.limit=8", "rft.n_samples=2", "rft.batch_size=2", "rft.micro_batch_size=2",
    "grpo.limit=4", "grpo.steps=1", "grpo.batch_size=2", "grpo.group_size=2", "grpo.micro_batch_size=2",
    "metarm.limit=4", "metarm.n_samples=2", "metarm.epochs=1", "metarm.batch_size=4", "metarm.micro_batch_size=4",
    "eval.limit=4", "eval.ks=[1,2]",
]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    from spct.pipeline.run import run_local

    os.environ["HF_HUB_OFFLINE"] = "1"
    run_dir = tmp_path_factory.mktemp("pipeline")
    # As after an in-process training stage (spct reproduce, a notebook): this process holds a
    # rendezvous port and names it in its environment. The tasks must not inherit it.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    before = {k: os.environ.get(k) for k in ("MASTER_PORT", "WORLD_SIZE")}
    os.environ.update(MASTER_PORT=str(held.getsockname()[1]), WORLD_SIZE="1")
    try:
        # Four evaluation items cannot put an interval above the position baselines, which the gate
        # requires by default; this run checks the wiring, so that one rule is off (and recorded).
        return run_local("tiny", run_dir, overrides=FAST,
                         sources=["builtin:verifiable?n=24&seed=1&categories=string_ops&modes=uppercase"],
                         tracking_uri=None, params={"require_above_baselines": False})
    finally:
        held.close()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_every_stage_left_its_artifacts(local_run):
    root = local_run.run_dir / "kfp"
    assert list(root.glob("**/curate/curated/manifest.json")) and list(root.glob("**/curate/curated/train.parquet"))
    for stage in ("rft", "grpo"):
        assert list(root.glob(f"**/{stage}/model/**/config.json")), stage
    assert list(root.glob("**/metarm/meta_rm/**"))
    results = next(root.glob("**/evaluate/results"))
    for f in ("report.json", "report.md", "scaling.png", "samples.jsonl", "gate.json"):
        assert (results / f).stat().st_size > 0, f
    gate = json.loads((results / "gate.json").read_text())
    assert gate["n"] == 4 and 0.0 <= gate["accuracy"] <= 1.0 and gate["gate_set"].startswith("sha256:")
    assert local_run.report["datasets"]  # what the CLI prints
    # The bundle goes to the registry only, never into a KFP artifact (a 27B bundle is ~54 GB).
    assert not list(root.glob("**/register/bundle"))
    bundle = next((local_run.run_dir / "mlflow").glob("**/grm/spct.json")).parent
    assert (bundle / "config.json").is_file()


def test_mlflow_holds_the_pipeline_run_with_nested_stage_runs(local_run):
    assert local_run.tracking_uri.startswith("sqlite:///") and str(local_run.run_dir) in local_run.tracking_uri
    c = client_for(local_run.tracking_uri)
    exp = c.get_experiment_by_name("spct")
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("spct.kind") == "pipeline"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    stages = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert {"curate", "rft", "grpo", "metarm", "evaluate", "register", "promote"} <= set(stages)
    assert all(r.info.status == "FINISHED" for r in stages.values())
    # training curves: per-step metrics from the trainer, through the MLflow logger
    steps = {m.step for k in stages["grpo"].data.metrics for m in c.get_metric_history(stages["grpo"].info.run_id, k)}
    assert len(steps) >= 1 and stages["grpo"].data.params["profile"] == "tiny"
    assert "gate/accuracy" in stages["evaluate"].data.metrics
    arts = {f.path for f in c.list_artifacts(stages["evaluate"].info.run_id)}
    assert {"report.json", "report.md", "scaling.png", "samples.jsonl", "gate.json"} <= arts
    assert "manifest.json" in {f.path for f in c.list_artifacts(stages["curate"].info.run_id)}
    inputs = stages["curate"].inputs.dataset_inputs
    assert {d.dataset.name for d in inputs} == {"curated-train", "curated-eval"}


def test_the_registered_version_has_aliases_and_gate_tags(local_run):
    c = client_for(local_run.tracking_uri)
    [v] = local_run.versions
    assert v.version == "1" and v.aliases == [CHALLENGER, CHAMPION] and v.decision == "promoted"
    mv = c.get_model_version_by_alias("spct-grm", CHAMPION)
    assert mv.tags["spct.gate.set"].startswith("sha256:") and "no champion" in mv.tags["spct.gate.reasons"]
    # whether Voting@k cleared its position baselines is measured and kept with the version
    assert mv.tags["spct.gate.above_baselines"] in ("true", "false")
    assert '"require_above_baselines":false' in mv.tags["spct.gate.policy"].replace(" ", "")
    assert mv.run_id == next(r.info.run_id for r in c.search_runs([c.get_experiment_by_name("spct").experiment_id])
                             if r.info.run_name == "register")


def test_the_registered_grm_judges_through_pyfunc(local_run):
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(local_run.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/spct-grm@champion")
    out = model.predict(pd.DataFrame({"prompt": ["What is 2+2?"], "responses": [["4", "5"]]}),
                        params={"k": 2, "max_new_tokens": 8})
    assert list(out.columns) == ["scores", "best", "parsed"]
    assert len(out["scores"][0]) == 2 and out["best"][0] in (0, 1)
