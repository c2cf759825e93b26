"""make reproduce's study on the tiny profile: the chain through the pipeline's stage runner, every
stage evaluated with baselines and intervals, a table, a plot and one MLflow parent run."""

import json
import os

import pytest

from spct.registry import client_for

FAST = [
    "rft.limit=12", "rft.n_samples=2", "rft.batch_size=2", "rft.micro_batch_size=2",
    "grpo.limit=4", "grpo.steps=1", "grpo.batch_size=2", "grpo.group_size=2", "grpo.micro_batch_size=2",
    "metarm.limit=4", "metarm.n_samples=2", "metarm.epochs=1", "metarm.batch_size=4", "metarm.micro_batch_size=4",
    "eval.limit=4",
]  # fmt: skip


@pytest.mark.timeout(900)
def test_study_trains_the_chain_and_evaluates_every_stage(tmp_path):
    from spct.evaluate.study import STAGE_ORDER, run_study

    os.environ["HF_HUB_OFFLINE"] = "1"
    docs = tmp_path / "docs"
    res = run_study("tiny", tmp_path / "run", overrides=FAST, ks=[1, 2], docs_dir=docs, command="spct reproduce --profile tiny")
    for stage in ("coldstart", "rft", "grpo", "metarm"):
        assert (tmp_path / "run" / stage / "model").is_dir(), stage
    # every stage, every column, each with its interval, its three position and three surface baselines
    cols = {(r["stage"], r["column"]) for r in res.rows}
    assert cols == {(s, c) for s in STAGE_ORDER for c in ("greedy", "voting@1", "voting@2", "metarm@1", "metarm@2")}
    for r in res.rows:
        lo, hi = r["result"]["ci95"]
        assert 0.0 <= lo <= r["result"]["accuracy"] <= hi <= 1.0
        assert set(r["result"]["baselines"]) == {"chance", "first_slot", "last_slot", "response_only", "longest", "shortest"}
        assert r["result"]["items"] == 4
    md = (docs / "reproduce.md").read_text()
    assert "spct reproduce --profile tiny" in md and "| grpo | verifiable | voting@2 |" in md and "![accuracy" in md
    assert (docs / "reproduce.png").read_bytes()[:4] == b"\x89PNG"
    # the differences that matter, each paired item for item on the same 4 items, with its interval
    assert [d["difference_of"] for d in res.differences] == [
        "RFT - cold start (greedy)", "GRPO - RFT (greedy)", "GRPO - cold start (greedy)", "Voting@2 - greedy (GRPO model)",
        "MetaRM@2 - Voting@2 (GRPO model)", "Voting@2 - greedy (cold-start model)"]
    for d in res.differences:
        assert d["groups"] == 4 and d["only_a"] == d["only_b"] == 0
        assert d["ci95"][0] <= d["difference"] <= d["ci95"][1]
        assert d["difference"] == pytest.approx(d["accuracy_a"] - d["accuracy_b"])
    assert "## Differences, paired" in md and "| verifiable | GRPO - RFT (greedy) |" in md
    assert json.loads((tmp_path / "run" / "study.json").read_text())["rows"] == res.rows
    # the evaluations refused no item: the held-out check ran against every training set and passed
    report = json.loads((tmp_path / "run" / "eval" / "grpo" / "report.json").read_text())
    assert all(e["data"]["heldout"]["overlapping"] == [] and e["data"]["heldout"]["training_items"] > 0
               for e in report["datasets"].values())

    c = client_for(res.tracking_uri)
    parent = c.get_run(res.run_id)
    assert parent.info.status == "FINISHED" and parent.data.params["command"] == "spct reproduce --profile tiny"
    nested = c.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{res.run_id}'")
    names = sorted(r.info.run_name for r in nested)
    assert names == sorted(["coldstart", "rft", "grpo", "metarm", "study"] + ["evaluate"] * 4)
    study = next(r for r in nested if r.info.run_name == "study")
    assert "grpo/verifiable/voting_at_2" in study.data.metrics and "seconds/total" in study.data.metrics
    assert "diff/verifiable/grpo_greedy-rft_greedy/ci95_low" in study.data.metrics

    # --resume keeps what the first sitting finished: no stage trains or evaluates again, same rows and seconds
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").glob("*/stage.json")}
    stamps |= {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "eval").glob("*/report.json")}
    assert len(stamps) == 8
    again = run_study("tiny", tmp_path / "run", overrides=FAST, ks=[1, 2], command="spct reproduce --resume", resume=True)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again.rows == res.rows and again.seconds == res.seconds
    # ... and refuses a run folder started with other settings, naming them
    from spct.config import ConfigError

    with pytest.raises(ConfigError, match="--resume needs the same"):
        run_study("tiny", tmp_path / "run", overrides=FAST, ks=[1, 4], resume=True)
