"""``spct eval --meta-rm PATH --k-meta N``: a saved meta RM loads through spct.grm.meta and MetaRM@k
keeps N of k samples; a bad folder is one line naming it."""

import json
import os

import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.cli import app
from spct.grm.meta import MetaRMError, load_meta_rm

runner = CliRunner()


@pytest.fixture(scope="module")
def meta_dir(tmp_path_factory):
    from spct.engine import load_model
    from spct.grm.meta import MetaRewardModel

    lm, tok = load_model("tiny", device="cpu")
    return MetaRewardModel.from_causal_lm(lm, tok).save(tmp_path_factory.mktemp("m") / "meta_rm")


def test_eval_with_a_meta_rm_adds_metarm_columns_keeping_k_meta(meta_dir, tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--limit", "2", "--k", "2,4", "--max-new-tokens", "4",
                              "--meta-rm", str(meta_dir), "--k-meta", "3", "--no-greedy", "--no-progress",
                              "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    entry = report["datasets"]["verifiable"]
    assert report["meta_rm"] and {"metarm@2", "metarm@4"} <= entry.keys()
    assert report["settings"]["k_meta"] == 3
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 4 and all(0.0 <= s["meta_score"] <= 1.0 for s in samples)
    # Which samples MetaRM@k keeps is pinned in test_eval_harness (the tiny model never parses, so
    # here every vote is empty); this test pins the wiring: the loaded meta RM rated every sample.
    assert entry["results"]["metarm@4"]["judgments"] == 2
    assert "metarm@4" in (out / "report.md").read_text()


def test_bad_meta_rm_folders_are_named(tmp_path):
    with pytest.raises(MetaRMError, match="no such meta RM folder"):
        load_meta_rm(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetaRMError, match="empty.*not a loadable meta RM"):
        load_meta_rm(tmp_path / "empty")
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--meta-rm", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--meta-rm" in res.output and "empty" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--k-meta", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--k-meta needs a meta RM" in res.output
