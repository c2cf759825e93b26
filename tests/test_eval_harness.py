"""The evaluation harness: Voting@k from prefixes of one draw, MetaRM@k, greedy in every order,
position baselines, bootstrap intervals, and the four report files (tiny model)."""

import json
import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.engine import SamplingParams
from spct.evaluate.harness import (
    EvalSettings,
    Judgments,
    baselines,
    bootstrap_ci,
    column,
    content_groups,
    evaluate,
    per_order,
    position_stats,
    resample,
    voted,
)
from spct.evaluate.scoring import score
from spct.grm.judge import Sample, rotations
from spct.grm.parse import Judgment, ParseFailure
from spct.grm.rules import pick_best, sample_rng, to_original, vote
from spct.types import Example, user


def _example(i, n=3, best=None):
    return Example(id=f"e{i}", source="generic", category=f"c{i % 2}", messages=[user(f"q{i}")],
                   responses=[f"r{j}" for j in range(n)], best=i % n if best is None else best)  # fmt: skip


def _sample(scores, perm=(0, 1, 2)):
    """A critique whose ``scores`` are given in presented order, shown in order ``perm``."""
    perm = list(perm)
    result = Judgment(scores) if scores else ParseFailure("no_box", "none")
    original = to_original(scores, perm) if scores else None
    return Sample(perm, "p", "t", result, original, 5, [1, 2], True)


def test_voting_at_k_uses_prefixes_of_one_draw():
    rng = random.Random(7)
    examples = [_example(i) for i in range(12)]
    keys = [f"k{i}" for i in range(12)]
    rows = [[_sample(None if rng.random() < 0.2 else [rng.randint(1, 10) for _ in range(3)]) for _ in range(8)]
            for _ in examples]  # fmt: skip
    for k in (1, 2, 4, 8):
        outs = voted(examples, keys, rows, k, seed=3).outcomes
        alone = voted(examples, keys, [row[:k] for row in rows], k, seed=3).outcomes
        assert [(o.totals, o.pick) for o in outs] == [(o.totals, o.pick) for o in alone]
        # Independently: sum the first k samples' scores, break ties with the item's seeded generator.
        for key, row, o in zip(keys, rows, outs):
            totals = vote([s.scores for s in row[:k]], 3).totals
            assert o.totals == totals
            assert o.pick == pick_best(totals, sample_rng(3, key, -1))
    with pytest.raises(ValueError, match="cannot vote over 9"):
        voted(examples, keys, rows, 9, seed=3)


def test_metarm_keeps_the_top_rated_samples():
    # Sample 0 is the only one pointing at the true best (0); the meta scores trust it most.
    ex = _example(0)
    row = [_sample([9, 1, 1]), _sample([1, 9, 1]), _sample([1, 9, 1]), _sample([1, 1, 9])]
    plain = voted([ex], ["k"], [row], 4, seed=0)
    meta = voted([ex], ["k"], [row], 4, seed=0, meta=[[0.9, 0.1, 0.2, 0.8]], k_meta=1)
    assert plain.outcomes[0].strict == 1 and score(plain.outcomes)["accuracy"] == 0
    assert meta.outcomes[0].strict == 0 and score(meta.outcomes)["accuracy"] == 1
    assert meta.perms == [[row[0].perm]]  # the baselines replay only the samples that voted
    default = voted([ex], ["k"], [row], 4, seed=0, meta=[[0.9, 0.1, 0.2, 0.8]])  # default k/2 = 2
    assert len(default.perms[0]) == 2


def _always_slot(examples, slot):
    """Greedy rows of a judge that gives its 9 to whatever sits in presented ``slot``, in every rotation."""
    rows = []
    for ex in examples:
        rows.append([_sample([9 if p == slot else 2 for p in range(ex.n)], perm) for perm in rotations(ex.n)])
    return rows


def test_a_judge_that_always_names_one_slot_scores_chance_when_every_order_is_judged():
    # Gold positions as unbalanced as the old demo set (15 of 24 in slot 2): judged in one
    # order, "always slot 2" would score 62.5%; in both orders it scores 50%, the chance level.
    examples = [_example(i, n=2, best=1 if i < 15 else 0) for i in range(24)]
    keys = [ex.id for ex in examples]
    rows = _always_slot(examples, slot=1)
    j = per_order(examples, keys, rows, seed=0)
    assert len(j.outcomes) == 48
    assert score(j.outcomes)["accuracy"] == 0.5
    stats = position_stats(examples, rows)
    assert stats == {"consistency": 0.0, "slot_shares": {"2": 1.0}}
    base = baselines(j, "generic", seed=0, draws=400)["official"]
    assert base["first_slot"] == base["last_slot"] == 0.5
    assert base["chance"] == pytest.approx(0.5, abs=0.03)
    # The same items judged by a judge that is right in every order: consistent, slots split evenly.
    right = [[_sample([9 if perm[p] == ex.best else 2 for p in range(2)], perm) for perm in rotations(2)] for ex in examples]
    assert score(per_order(examples, keys, right, seed=0).outcomes)["accuracy"] == 1.0
    assert position_stats(examples, right) == {"consistency": 1.0, "slot_shares": {"1": 0.5, "2": 0.5}}


def test_ties_and_unparsed_are_misses_officially_and_coin_flips_for_the_paper_column():
    examples = [_example(i, n=2, best=0) for i in range(200)]
    rows = [[_sample([5, 5], (0, 1))] if i % 2 else [_sample(None, (0, 1))] for i in range(200)]
    res = score(voted(examples, [ex.id for ex in examples], rows, 1, seed=0).outcomes)
    assert res["accuracy"] == 0.0
    assert res["accuracy_paper"] == pytest.approx(0.5, abs=0.08)


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_n():
    def outcomes(n):
        exs = [_example(i, n=2, best=0) for i in range(n)]
        rows = [[_sample([9, 2] if i % 4 else [2, 9], (0, 1))] for i in range(n)]  # 75% right
        return voted(exs, [e.id for e in exs], rows, 1, seed=0).outcomes

    small, large = outcomes(40), outcomes(400)
    lo, hi = bootstrap_ci(small, "generic", "official", resamples=500, seed=0)
    assert lo < 0.75 < hi
    lo2, hi2 = bootstrap_ci(large, "generic", "official", resamples=500, seed=0)
    assert lo2 < 0.75 < hi2 and hi2 - lo2 < (hi - lo) / 2
    assert bootstrap_ci(small, "generic", "official", resamples=500, seed=0) == [lo, hi]  # seeded


def test_bootstrap_keeps_copies_of_a_unit_apart():
    # Both orders of an item share a unit and are drawn together; a unit drawn twice stays two
    # units (JudgeBench sums a unit's verdicts: merged copies would count one pair, not two).
    exs = [_example(i, n=2, best=0) for i in range(3)]
    rows = [[_sample([9, 2], perm) if perm == (0, 1) else _sample([2, 9], perm) for perm in rotations(2)] for _ in exs]
    j = per_order(exs, [e.id for e in exs], rows, seed=0)
    by_unit = {}
    for o in j.outcomes:
        by_unit.setdefault(o.unit, []).append(o)
    assert {u: len(v) for u, v in by_unit.items()} == {"e0": 2, "e1": 2, "e2": 2}
    rng = random.Random(0)
    for _ in range(50):
        drawn = resample({u: {u: outs} for u, outs in by_unit.items()}, rng)
        assert len(drawn) == 6 and len({o.unit for o in drawn}) == 3
        assert all(o.unit.split("#")[0] in by_unit for o in drawn)
    assert score(j.outcomes)["accuracy"] == 1.0


def _pair_outcomes(rights):
    """Greedy outcomes of pairs judged in both orders; ``rights[i]`` = (first order right, second order right)."""
    exs = [_example(i, n=2, best=0) for i in range(len(rights))]
    rows = [[_sample([9, 2] if r[0] else [2, 9], (0, 1)), _sample([2, 9] if r[1] else [9, 2], (1, 0))] for r in rights]
    return exs, per_order(exs, [e.id for e in exs], rows, seed=0)


def test_bootstrap_resamples_items_not_orders():
    # Every item is right in exactly one of its two orders: each item scores 0.5, so every resample
    # of ITEMS scores 0.5 and the interval has no width. Resampling single orders would not.
    exs, j = _pair_outcomes([(True, False) if i % 2 else (False, True) for i in range(40)])
    assert bootstrap_ci(j.outcomes, "generic", "official", resamples=300, seed=1) == [0.5, 0.5]


def test_bootstrap_draws_copies_of_the_same_content_together():
    # 10 distinct items, one of them present 11 times (20 units). Resampling content groups treats the
    # 11 copies as ONE piece of evidence: the interval is as wide as 10 items allow, and a grouping by
    # unit (copies independent) is narrower.
    rights = [(True, True)] * 11 + [(False, False)] * 4 + [(True, True)] * 5
    exs, j = _pair_outcomes(rights)
    groups = {e.id: ("dup" if i < 11 else e.id) for i, e in enumerate(exs)}
    by_content = bootstrap_ci(j.outcomes, "generic", "official", resamples=1000, seed=2, groups=groups)
    by_unit = bootstrap_ci(j.outcomes, "generic", "official", resamples=1000, seed=2)
    assert by_content[1] - by_content[0] > 1.3 * (by_unit[1] - by_unit[0])
    # A resample draws the duplicated group whole: all 11 copies or none of them.
    by_group = {}
    for o in j.outcomes:
        by_group.setdefault(groups[o.unit], {}).setdefault(o.unit, []).append(o)
    rng = random.Random(3)
    for _ in range(30):
        drawn = resample(by_group, rng)
        copies = sum(1 for o in drawn if o.unit.split("#")[0] in {f"e{i}" for i in range(11)})
        assert copies % 22 == 0


def test_content_groups_merge_copies_whatever_their_ids_and_order():
    a = Example(id="a", source="generic", messages=[user("What is 2+2?")], responses=["4", "5"], best=0)
    b = Example(id="b", source="generic", messages=[user("what is  2+2?")], responses=["5", "4"], best=1)
    c = Example(id="c", source="generic", messages=[user("What is 2+3?")], responses=["5", "4"], best=0)
    g = content_groups([a, b, c])
    assert g["a"] == g["b"] != g["c"]


def test_above_baselines_uses_lower_bound():
    # A column whose interval straddles the best baseline is not above it: 60 items right in both
    # orders, 40 right in neither -> accuracy 0.6, interval roughly 0.5-0.7, while a judge that always
    # names the first slot scores 0.5 (gold balanced over slots) and the longest response... here
    # responses tie in length, so the surface judges score 0.
    exs, j = _pair_outcomes([(True, True)] * 6 + [(False, False)] * 4)
    settings = EvalSettings(ks=[1], bootstrap=300, baseline_draws=20)
    res = column(j, "generic", settings)
    lo, hi = res["ci95"]
    assert lo < max(res["baselines"].values()) < hi
    assert res["above_baselines"] is False
    # The same judgments 10 times over (distinct items) are above: the interval narrows past 0.5.
    exs, j = _pair_outcomes([(True, True)] * 60 + [(False, False)] * 30)
    res = column(j, "generic", settings)
    assert res["ci95"][0] > max(res["baselines"].values()) and res["above_baselines"] is True


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
    settings = EvalSettings(ks=[1, 2, 4], sampling=SamplingParams(max_new_tokens=8, seed=1), bootstrap=50)
    report = evaluate(engine, {"toy": examples}, settings, meta_rm=LengthRater(), out_dir=tmp_path, progress=False)
    entry = report["datasets"]["toy"]
    assert {"greedy", "voting@1", "voting@2", "voting@4", "metarm@1", "metarm@2", "metarm@4"} <= entry.keys()
    assert entry["n"] == 3 and 0 <= entry["parse_rate"] <= 1 and entry["mean_generated_tokens"] > 0
    for col, res in entry["results"].items():
        assert res["accuracy"] == entry[col]
        # Position and surface judges on the same items; the classifier is cross-fitted (no training items given).
        assert set(res["baselines"]) == {"chance", "first_slot", "last_slot", "response_only", "longest", "shortest"}
        assert res["items"] == 3 and len(res["ci95"]) == 2 and res["ci95"][0] <= res["ci95"][1]
    greedy = entry["results"]["greedy"]
    assert greedy["judgments"] == 9 and greedy["orders"] == "every rotation"  # 3 items x 3 rotations
    assert sum(greedy["slot_shares"].values()) == pytest.approx(1.0)

    lines = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 4 + 3 * 3  # items x max k, plus one greedy critique per item and order
    greedy_perms = [tuple(r["perm"]) for r in lines if r["mode"] == "greedy"]
    assert greedy_perms == [p for _ in examples for p in rotations(3)]
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report.json").read_text())["datasets"]["toy"]["voting@4"] == entry["voting@4"]
    md = (tmp_path / "report.md").read_text()
    assert "| toy | generic | greedy |" in md and "first slot" in md and "consistent on" in md

    # Rebuild every Voting@k from the saved critiques: the prefix of the same samples.
    from spct.grm.judge import content_key

    by_id = {}
    for rec in lines:
        if rec["mode"] == "sample":
            by_id.setdefault(rec["example_id"], []).append(rec)
    keys = [content_key(ex.messages, ex.responses) for ex in examples]
    for k in settings.ks:
        rows = [[_sample(None, r["perm"]) if r["scores"] is None else
                 _sample([r["scores"][i] for i in r["perm"]], r["perm"]) for r in by_id[ex.id]] for ex in examples]  # fmt: skip
        assert score(voted(examples, keys, rows, k, seed=1).outcomes)["accuracy"] == entry[f"voting@{k}"]


def test_judgments_baselines_replay_the_presented_orders():
    # Voting@2 over two shuffles: "always first" sums 10 for whatever was shown first; when the
    # two samples showed different responses first, the totals tie (a miss officially).
    ex = _example(0, n=2, best=0)
    j = Judgments(voted([ex], ["k"], [[_sample([5, 5], (0, 1)), _sample([5, 5], (1, 0))]], 2, seed=0).outcomes,
                  [[[0, 1], [1, 0]]])  # fmt: skip
    assert baselines(j, "generic", seed=0, draws=5)["official"]["first_slot"] == 0.0
    j2 = Judgments(j.outcomes, [[[0, 1], [0, 1]]])
    assert baselines(j2, "generic", seed=0, draws=5)["official"] | {"chance": 0} == {"chance": 0, "first_slot": 1.0, "last_slot": 0.0}
