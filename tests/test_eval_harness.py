"""Voting@k from prefixes of one draw, MetaRM@k, and the four report files (tiny model)."""

import json
import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.evaluate.harness import EvalSettings, evaluate, outcomes_for
from spct.evaluate.scoring import score
from spct.grm.judge import Sample
from spct.grm.parse import Judgment, ParseFailure
from spct.grm.rules import pick_best, sample_rng, vote
from spct.types import Example, user


def _example(i, n=3):
    return Example(id=f"e{i}", source="generic", category=f"c{i % 2}", messages=[user(f"q{i}")],
                   responses=[f"r{j}" for j in range(n)], best=i % n)  # fmt: skip


def _sample(scores):
    result = Judgment(scores) if scores else ParseFailure("no_box", "none")
    return Sample([0, 1, 2], "p", "t", result, scores, 5, [1, 2], True)


def test_voting_at_k_uses_prefixes_of_one_draw():
    rng = random.Random(7)
    examples = [_example(i) for i in range(12)]
    rows = [[_sample(None if rng.random() < 0.2 else [rng.randint(1, 10) for _ in range(3)]) for _ in range(8)]
            for _ in examples]  # fmt: skip
    for k in (1, 2, 4, 8):
        outs, _ = outcomes_for(examples, rows, k, seed=3)
        alone, _ = outcomes_for(examples, [row[:k] for row in rows], k, seed=3)
        assert [(o.totals, o.best) for o in outs] == [(o.totals, o.best) for o in alone]
        # Independently: sum the first k samples' scores, break ties with the item's seeded generator.
        for ex, row, o in zip(examples, rows, outs):
            totals = vote([s.scores for s in row[:k]], 3).totals
            assert o.totals == totals
            assert o.best == pick_best(totals, sample_rng(3, ex.id, -1))
    with pytest.raises(ValueError, match="cannot vote over 9"):
        outcomes_for(examples, rows, 9, seed=3)


def test_metarm_keeps_the_top_rated_samples():
    # Sample 0 is the only one pointing at the true best (0); the meta scores trust it most.
    ex = _example(0)
    row = [_sample([9, 1, 1]), _sample([1, 9, 1]), _sample([1, 9, 1]), _sample([1, 1, 9])]
    plain, _ = outcomes_for([ex], [row], 4, seed=0)
    meta, verdicts = outcomes_for([ex], [row], 4, seed=0, meta=[[0.9, 0.1, 0.2, 0.8]], k_meta=1)
    assert plain[0].best == 1 and not plain[0].correct
    assert meta[0].best == 0 and meta[0].correct and verdicts[0].kept == [0]
    _, verdicts = outcomes_for([ex], [row], 4, seed=0, meta=[[0.9, 0.1, 0.2, 0.8]])  # default k/2 = 2
    assert verdicts[0].kept == [0, 3]


class LengthRater:
    """A real (if naive) meta RM: trusts longer critiques more."""

    def rate(self, prompts, critiques):
        return [float(len(c)) for c in critiques]


@pytest.fixture(scope="module")
def engine():
    from spct.engine import Engine

    return Engine.load("tiny")


def test_evaluate_writes_consistent_report(engine, tmp_path):
    examples = [_example(i) for i in range(3)]
    settings = EvalSettings(ks=[1, 2, 4], max_new_tokens=8, seed=1)
    report = evaluate(engine, {"toy": examples}, settings, meta_rm=LengthRater(), out_dir=tmp_path, progress=False)
    entry = report["datasets"]["toy"]
    assert {"greedy", "voting@1", "voting@2", "voting@4", "metarm@1", "metarm@2", "metarm@4"} <= entry.keys()
    assert entry["n"] == 3 and 0 <= entry["parse_rate"] <= 1 and entry["mean_generated_tokens"] > 0

    lines = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 4 + 3  # items x max k, plus one greedy critique per item
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report.json").read_text())["datasets"]["toy"]["voting@4"] == entry["voting@4"]
    assert "| toy | generic |" in (tmp_path / "report.md").read_text()

    # Rebuild every Voting@k from the saved critiques: the prefix of the same samples.
    by_id = {}
    for rec in lines:
        if rec["mode"] == "sample":
            by_id.setdefault(rec["example_id"], []).append(rec)
    for k in settings.ks:
        outs, _ = outcomes_for(examples, [[_sample(r["scores"]) for r in by_id[ex.id]] for ex in examples], k, seed=1)
        assert score(outs)["accuracy"] == entry[f"voting@{k}"]
    assert all(r["perm"] == sorted(r["perm"]) for r in lines if r["mode"] == "greedy")  # greedy keeps the order
