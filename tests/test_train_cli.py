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


def test_the_documented_cli_chain_runs_on_the_tiny_profile(tmp_path):
    """docs/training.md's chain: coldstart -> rft -> grpo -> metarm -> eval, each writing what the next reads."""
    import json

    def run(*args):
        r = runner.invoke(app, [*args, "--no-progress"])
        assert r.exit_code == 0, r.output
        return r

    cs, rft, grpo, meta = (tmp_path / d for d in ("coldstart", "rft", "grpo", "metarm"))
    run("coldstart", "--config", "tiny", "--out", str(cs))
    run("rft", "--config", "tiny", "--model", str(cs / "model"), "--out", str(rft), "--set", "rft.limit=12")
    run("grpo", "--config", "tiny", "--model", str(rft / "model"), "--out", str(grpo), "--set", "grpo.steps=2",
        "--set", "grpo.batch_size=4")
    run("metarm", "--config", "tiny", "--model", str(cs / "model"), "--samples", str(rft / "samples.jsonl"),
        "--out", str(meta), "--set", "metarm.epochs=1")
    for d, stage in ((cs, "coldstart"), (rft, "rft"), (grpo, "grpo"), (meta, "metarm")):
        assert json.loads((d / "summary.json").read_text())["stage"] == stage
    assert json.loads((grpo / "summary.json").read_text())["steps"] == 2
    assert (meta / "model" / "metarm.json").is_file()
    run("eval", "--profile", "tiny", "--model", str(grpo / "model"), "--out", str(tmp_path / "eval"), "--limit", "4",
        "--k", "1,2")
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    [entry] = report["datasets"].values()
    assert entry["n"] == 4 and entry["parse_rate"] > 0.5  # the cold-started format survives RFT and GRPO
