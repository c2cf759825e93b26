"""The training commands reject bad configuration with one clear line naming the field."""

from typer.testing import CliRunner

from spct.cli import app

runner = CliRunner()


def test_bad_overrides_name_the_field(tmp_path):
    r = runner.invoke(app, ["grpo", "--out", str(tmp_path), "--set", "grpo.group_size=1"])
    assert r.exit_code == 2 and "grpo.group_size" in r.output
    r = runner.invoke(app, ["grpo", "--out", str(tmp_path), "--set", "grpo.batch_size=3", "--set", "grpo.micro_batch_size=8"])
    assert r.exit_code == 2 and "not a multiple of micro_batch_size" in r.output
    r = runner.invoke(app, ["rft", "--out", str(tmp_path), "--set", "rft.bogus=1"])
    assert r.exit_code == 2 and "rft.bogus" in r.output


def test_missing_inputs_are_named(tmp_path):
    r = runner.invoke(app, ["metarm", "--out", str(tmp_path), "--samples", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 2 and "nope.jsonl" in r.output
    r = runner.invoke(app, ["coldstart", "--out", str(tmp_path / "o"), "--model", str(tmp_path / "no-such-model")])
    assert r.exit_code == 2 and "no-such-model" in r.output
