"""``spct eval`` end to end on every shared dataset and ``spct judge``, with the tiny model."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.cli import app

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = ["rm-bench", "judgebench", "hh-rlhf", "rmb-sample"]
runner = CliRunner()


def test_shared_data_is_present():
    # Not optional: the end-to-end test below reads these folders in place.
    missing = [d for d in DATASETS if not (SHARED / d).exists()]
    assert not missing, f"shared datasets missing under {SHARED}: {missing}"


def test_eval_end_to_end_on_every_shared_dataset(tmp_path):
    data = [a for d in DATASETS for a in ("--data", str(SHARED / d))] + ["--data", "builtin:verifiable"]
    out = tmp_path / "report"
    args = ["eval", "--profile", "tiny", *data, "--limit", "1", "--k", "1,2", "--max-new-tokens", "8",
            "--seed", "5", "--skip-bad", "--no-progress", "--out", str(out)]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "report.md" in res.output

    report = json.loads((out / "report.json").read_text())
    names = {"rm-bench": "rm-bench", "judgebench": "judgebench", "hh-rlhf": "hh-rlhf", "rmb-sample": "rmb", "verifiable": "generic"}
    assert {n: e["benchmark"] for n, e in report["datasets"].items()} == names
    # --limit counts whole items: an RM-Bench prompt is 9 style pairs, a JudgeBench pair one example
    # (greedy judges both orders). One item each keeps the test to seconds on 2 CPU cores.
    sizes = {"rm-bench": 9, "judgebench": 1, "hh-rlhf": 1, "rmb-sample": 1, "verifiable": 1}
    assert {n: e["n"] for n, e in report["datasets"].items()} == sizes
    for name, e in report["datasets"].items():
        assert e["items"] == 1
        for key in ("greedy", "voting@1", "voting@2", "parse_rate", "greedy_parse_rate"):
            assert 0.0 <= e[key] <= 1.0, (name, key)
        assert e["seconds"] >= 0 and e["mean_generated_tokens"] > 0
        assert e["data"]["heldout"]["overlapping"] == []
    assert set(report["datasets"]["rm-bench"]["results"]["voting@2"]) >= {"hard", "normal", "easy", "domains"}
    assert "pairs" in report["datasets"]["judgebench"]["results"]["greedy"]
    assert report["settings"]["ks"] == [1, 2] and report["settings"]["sampling"]["seed"] == 5

    # The random tiny model never writes a score. Under the official rules a tie or an unparsed
    # judgment is a miss, so it scores 0 on RM-Bench, RMB and JudgeBench (a coin flip used to give
    # it ~50% on pairs); the paper's random tie-break stays visible as its own column, and the
    # position baselines sit beside every figure.
    for name in ("rm-bench", "judgebench", "rmb-sample"):
        e = report["datasets"][name]
        assert e["parse_rate"] == e["greedy_parse_rate"] == 0.0
        for col in ("greedy", "voting@1", "voting@2"):
            res = e["results"][col]
            assert res["accuracy"] == 0.0 and res["ci95"] == [0.0, 0.0], (name, col)
            assert {"chance", "first_slot", "last_slot", "longest", "shortest"} <= set(res["baselines"]) and res["baselines"]["chance"] > 0
            assert not res["above_baselines"]
        assert e["results"]["greedy"]["slot_shares"] == {"none": 1.0}
    assert report["datasets"]["judgebench"]["results"]["greedy"]["judgments"] == 2  # both orders
    assert report["datasets"]["rm-bench"]["results"]["greedy"]["judgments"] == 18

    lines = (out / "samples.jsonl").read_text().splitlines()
    greedy_lines = sum(1 for x in lines if json.loads(x)["mode"] == "greedy")
    assert len(lines) - greedy_lines == sum(sizes.values()) * 2  # examples x max k
    assert greedy_lines == sum(r["results"]["greedy"]["judgments"] for r in report["datasets"].values())
    rec = json.loads(lines[0])
    assert {"dataset", "example_id", "sample", "perm", "text", "scores", "completion_tokens"} <= rec.keys()
    assert rec["scores"] is not None or "parse_failure" in rec
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| rm-bench | rm-bench | voting@2 |" in md and "first slot" in md


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/nonexistent/data.jsonl"], "/nonexistent/data.jsonl"),
        (["--profile", "no-such-profile"], "no profile named"),
        (["--k", "1,x"], "--k"),
        (["--k", "0,2"], "--k"),
    ],
)
def test_eval_bad_input_exits_2_with_one_line(tmp_path, args, message):
    res = runner.invoke(app, ["eval", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_dataset_names_are_short_and_unique():
    from spct.evaluate.harness import dataset_name

    taken: set[str] = set()
    specs = ["builtin:verifiable?n=80&seed=0&modes=uppercase", "builtin:verifiable", "../data/rm-bench/", "x/hh-rlhf.jsonl"]
    assert [dataset_name(s, taken) for s in specs] == ["verifiable", "verifiable-2", "rm-bench", "hh-rlhf"]


def test_judge_prints_scores_or_parse_failures():
    args = ["judge", "--model", "tiny", "--prompt", "What is 2+2?", "--response", "4", "--response", "5",
            "--k", "3", "--max-new-tokens", "8", "--seed", "1"]  # fmt: skip
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # stdout holds only the JSON; progress bars go to stderr
    assert len(out["samples"]) == 3 and len(out["totals"]) == 2
    for s in out["samples"]:
        assert (s["scores"] is not None and len(s["scores"]) == 2) or s["parse_failure"]["reason"]
    assert out["best"] in out["tied"] and out["used"] + out["failed"] == 3

    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "totals:" in res.output and "best: response" in res.output
    assert "sample 2" in res.output


def test_eval_reports_the_official_aggregates_of_rewardbench_rewardbench2_and_ppe(tmp_path):
    # Fixtures in each benchmark's own format (tests/fixtures, see test_eval_scoring for the
    # official code each follows). The tiny model never parses a score, so each aggregate is
    # what its official script gives an unparsed judgment: RewardBench 0.5 (run_generative.py
    # scores an error as a tie), RewardBench 2 best-of-4 subsets 0.25 (run_generative_v2.py),
    # PPE 0 (a miss).
    fx = Path(__file__).parent / "fixtures"
    specs = [fx / "rewardbench", fx / "rewardbench-2", fx / "ppe" / "human-preference.jsonl", fx / "ppe" / "math-best-of-k.jsonl"]
    out = tmp_path / "r"
    res = runner.invoke(app, ["eval", "--profile", "tiny", *[a for s in specs for a in ("--data", str(s))], "--k", "1",
                              "--max-new-tokens", "4", "--no-progress", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    ds = json.loads((out / "report.json").read_text())["datasets"]
    assert {n: e["benchmark"] for n, e in ds.items()} == {
        "rewardbench": "rewardbench", "rewardbench-2": "rewardbench-2",
        "human-preference": "ppe-preference", "math-best-of-k": "ppe-correctness",
    }  # fmt: skip
    for col in ("greedy", "voting@1"):
        rb = ds["rewardbench"]["results"][col]
        assert rb["sections"] == {"Chat": 0.5, "Reasoning": 0.5} and rb["accuracy"] == 0.5
        assert rb["missing_sections"] == ["Chat Hard", "Safety"]
        rb2 = ds["rewardbench-2"]["results"][col]
        assert rb2["subsets"]["Factuality"] == rb2["subsets"]["Math"] == 0.25
        assert rb2["accuracy"] == pytest.approx(sum(rb2["subsets"].values()) / len(rb2["subsets"]))
        assert set(rb2["ties"]) >= {"tied_accuracy", "ref_accuracy", "correctness_preferred", "correctness_margin_score"}
        assert ds["human-preference"]["results"][col]["accuracy"] == 0.0
        assert ds["math-best-of-k"]["results"][col]["accuracy"] == 0.0
        for e in ds.values():
            assert "rule" in e["results"][col] and {"chance", "first_slot", "last_slot", "longest", "shortest"} <= set(e["results"][col]["baselines"])
