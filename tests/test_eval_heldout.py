"""The held-out guard: evaluation refuses items it shares with the training data, naming them."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.cli import app
from spct.config import load_profile
from spct.data import load
from spct.evaluate.heldout import OverlapError, check_heldout, find_overlaps, training_specs
from spct.types import Example, Message, user

runner = CliRunner()


def test_the_old_seed_split_shared_inputs_and_the_new_split_does_not():
    # What the profiles did before: evaluation seed 0, training seed 1, the same generator.
    old_eval = load("builtin:verifiable?n=200&seed=0").examples
    old_train = load("builtin:verifiable?n=200&seed=1").examples
    assert find_overlaps({"eval": old_eval}, {"train": old_train})  # the issue counted 21 by inputs
    # split=heldout never draws an input that split=train can draw, for any seeds and sizes.
    ev = {"eval": load("builtin:verifiable?n=400&seed=0&split=heldout").examples}
    for seed in (0, 1, 7):
        train = {"train": load(f"builtin:verifiable?n=400&seed={seed}&split=train").examples}
        assert find_overlaps(ev, train) == []
    inputs = lambda exs: {json.dumps([e.category, e.meta["params"]], sort_keys=True) for e in exs}  # noqa: E731
    assert not inputs(ev["eval"]) & inputs(load("builtin:verifiable?n=400&seed=3&split=train").examples)


def test_every_profile_evaluates_on_items_its_training_never_saw():
    for name in ("tiny", "demo"):
        prof = load_profile(name)
        train = {s: load(s).examples for s in training_specs(prof)}
        evals = {s: load(s).examples for s in prof.eval.data}
        checked = check_heldout(evals, train)
        assert all(not h["overlapping"] for h in checked.values()), name


def test_overlap_is_found_by_normalised_content_across_ids_and_sources():
    a = Example(id="train/1", source="x", messages=[user("What is  2 + 2?")], responses=["4", "5"], best=0)
    b = Example(id="eval/9", source="y", messages=[user("what is 2 + 2? ")], responses=["5", "4"], best=1)
    c = Example(id="eval/10", source="y", messages=[user("What is 2 + 2?")], responses=["four", "five"], best=0)
    d = Example(id="eval/11", source="y", messages=[Message(role="system", content="Be brief."), user("What is 2 + 2?")],
                responses=["4", "5"], best=0)  # fmt: skip
    overlaps = find_overlaps({"ev": [b, c, d]}, {"train.jsonl": [a]})
    assert [(o.eval_id, o.train_id, o.same_responses) for o in overlaps] == [("eval/9", "train/1", True), ("eval/10", "train/1", False)]
    with pytest.raises(OverlapError, match=r"2 evaluation items are not held out: ev:eval/9 has the same prompt and responses as training item train/1"):
        check_heldout({"ev": [b, c, d]}, {"train.jsonl": [a]})
    allowed = check_heldout({"ev": [b, c, d]}, {"train.jsonl": [a]}, allow=True)
    assert allowed["ev"]["overlapping"] == ["eval/10", "eval/9"] and allowed["ev"]["allowed"]


def test_spct_eval_refuses_an_overlapping_set_and_reports_an_allowed_one(tmp_path):
    common = ["eval", "--profile", "tiny", "--data", "builtin:verifiable?n=6&seed=2&categories=string_ops&modes=uppercase",
              "--limit", "2", "--k", "1", "--max-new-tokens", "4", "--no-progress"]  # fmt: skip
    res = runner.invoke(app, [*common, "--train-data", "builtin:verifiable?n=6&seed=2&categories=string_ops&modes=uppercase",
                              "--out", str(tmp_path / "a")])  # fmt: skip
    assert res.exit_code == 2 and "not held out" in res.output and "verifiable/2/0" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "a" / "report.json").exists()
    res = runner.invoke(app, [*common, "--train-data", "builtin:verifiable?n=6&seed=2&categories=string_ops&modes=uppercase",
                              "--allow-overlap", "--out", str(tmp_path / "b")])  # fmt: skip
    assert res.exit_code == 0, res.output
    h = json.loads((tmp_path / "b" / "report.json").read_text())["datasets"]["verifiable"]["data"]["heldout"]
    assert h["allowed"] and h["overlapping"] == ["verifiable/2/0", "verifiable/2/1"]  # the 2 evaluated (--limit 2)
    assert "NO: 2 items shared with training" in (tmp_path / "b" / "report.md").read_text()


JUDGEBENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "judgebench" / "gpt-4o-2024-05-13.jsonl"


@pytest.fixture(scope="module")
def curated_judgebench(tmp_path_factory):
    """A run's curated artifact built from real, non-synthetic data (what the pipeline's stages train on)."""
    from spct.data import CurateConfig, curate

    out = tmp_path_factory.mktemp("curated")
    curate([str(JUDGEBENCH)], out, CurateConfig(limit=60, eval_fraction=0.2))
    return out


def test_pipeline_evaluate_checks_the_curated_artifact_the_run_trained_on(curated_judgebench, tmp_path):
    from spct.pipeline.stages import Tracking, evaluate_stage, run_training_data
    from spct.registry.tracking import start_pipeline_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = Tracking(uri, start_pipeline_run(uri, "heldout", "guard", {}))
    train = run_training_data(curated_judgebench, "tiny", [], coldstart=False)
    assert train == [str(curated_judgebench / "train.parquet")]
    # Evaluating on the curated TRAIN split is refused, naming the items. The profile's default training
    # specs (synthetic items) would have let it pass: the guard must read what the run trained on.
    sets = [f"eval.data={json.dumps([str(curated_judgebench / 'train.parquet')])}", "eval.limit=2", "eval.ks=[1]",
            "sampling.max_new_tokens=4"]  # fmt: skip
    assert not find_overlaps({"e": load(str(curated_judgebench / "train.parquet")).examples},
                             {s: load(s).examples for s in training_specs(load_profile("tiny"))})
    with pytest.raises(OverlapError, match="not held out"):
        evaluate_stage(Path("tiny"), None, "tiny", sets, tmp_path / "a", tracking, train_data=train)
    assert not (tmp_path / "a" / "report.json").exists()
    # The curated EVAL split is held out from it; the report says what it was checked against, and the
    # response-only baseline is fitted on those training items.
    sets[0] = f"eval.data={json.dumps([str(curated_judgebench / 'eval.parquet')])}"
    report, _ = evaluate_stage(Path("tiny"), None, "tiny", sets, tmp_path / "b", tracking, train_data=train)
    (entry,) = report["datasets"].values()
    assert entry["data"]["heldout"]["checked_against"] == train and not entry["data"]["heldout"]["overlapping"]
    assert entry["surface"]["fitted_on"] == "training items"


def test_pipeline_evaluate_fails_when_the_training_data_is_unknown(tmp_path):
    from spct.pipeline.stages import Tracking, evaluate_stage, run_training_data

    with pytest.raises(ValueError, match="cannot identify the training data"):
        run_training_data(tmp_path, "tiny", [], coldstart=False)
    with pytest.raises(ValueError, match="needs the training data"):
        evaluate_stage(Path("tiny"), None, "tiny", [], tmp_path, Tracking("sqlite:///x.db", "r"), train_data=[])
    # With the cold-start task in the run, its data is checked too.
    (tmp_path / "train.parquet").write_bytes(b"")
    specs = run_training_data(tmp_path, "tiny", [], coldstart=True)
    assert specs[1] == load_profile("tiny").coldstart.data
