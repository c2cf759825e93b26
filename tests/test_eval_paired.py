"""Paired differences (spct.evaluate.paired): the interval of a difference between two columns
judged on the same items, and the per-group credit every generic column now carries for it."""

import random

import pytest

from spct.data import load
from spct.engine import SamplingParams
from spct.evaluate.harness import EvalSettings, bootstrap_ci, evaluate
from spct.evaluate.paired import paired_difference
from surface_judges import capital_counter

EVAL = "reasoning-gym:word_sorting,gcd?n=16&seed=0&split=heldout&level=0"


def _cells(credits):
    return {f"g{i}": [float(c), 1] for i, c in enumerate(credits)}


def test_a_column_against_itself_differs_by_exactly_zero():
    a = _cells([1, 0, 1, 1, 0, 1])
    d = paired_difference(a, a, resamples=500)
    assert d["difference"] == 0.0 and d["ci95"] == [0.0, 0.0]
    assert not d["above_zero"] and not d["below_zero"]


def test_pairing_sees_a_gain_that_two_separate_intervals_cannot():
    # 200 items: B is right on 60%; A is right wherever B is, and on 16 more. Separately their intervals
    # overlap widely; item for item A never loses, so the paired interval is above zero. Resampling the
    # two columns independently (the mistake this guards against) would give an interval around 0.08
    # about 0.19 wide, with zero inside.
    rng = random.Random(0)
    b = [1 if rng.random() < 0.6 else 0 for _ in range(200)]
    wrong = [i for i, c in enumerate(b) if c == 0]
    a = list(b)
    for i in wrong[:16]:
        a[i] = 1
    d = paired_difference(_cells(a), _cells(b), resamples=2000, seed=1)
    assert d["difference"] == pytest.approx(16 / 200)
    assert d["above_zero"] and 0.03 < d["ci95"][0] < d["ci95"][1] < 0.13
    assert d["groups"] == 200 and d["only_a"] == d["only_b"] == 0


def test_only_shared_groups_count_and_disjoint_columns_are_refused():
    a, b = _cells([1, 1, 0]), _cells([0, 1])
    d = paired_difference(a, b, resamples=100)
    assert d["groups"] == 2 and d["only_a"] == 1 and d["difference"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="share no item groups"):
        paired_difference({"x": [1.0, 1]}, {"y": [1.0, 1]})


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    settings = EvalSettings(ks=[1, 2], sampling=SamplingParams(max_new_tokens=32, seed=0), bootstrap=300, baseline_draws=20)
    return evaluate(capital_counter(), {"rg": load(EVAL).examples}, settings, out_dir=tmp_path_factory.mktemp("paired"),
                    progress=False, model="capital-counter")


def test_every_generic_column_carries_its_accuracy_per_content_group(report):
    e = report["datasets"]["rg"]
    for name, res in e["results"].items():
        cells = res["by_group"]
        assert len(cells) == res["distinct"], name
        # Greedy judges every order of an item: two judgments per group; a vote is one.
        assert sum(n for _, n in cells.values()) == res["judgments"], name
        assert sum(c for c, _ in cells.values()) / res["judgments"] == pytest.approx(res["accuracy"]), name
    # Greedy vs Voting@1 of the same judge on the same items: the interval of the difference is
    # never wider than the two separate intervals laid end to end.
    g, v = e["results"]["greedy"], e["results"]["voting@1"]
    d = paired_difference(g["by_group"], v["by_group"], resamples=500)
    assert d["groups"] == g["distinct"] and d["difference"] == pytest.approx(g["accuracy"] - v["accuracy"])
    assert d["ci95"][1] - d["ci95"][0] <= (g["ci95"][1] - g["ci95"][0]) + (v["ci95"][1] - v["ci95"][0]) + 1e-9


def test_bootstrap_ci_agrees_with_the_groups_the_pairing_draws():
    # The column's own interval and the paired one resample the same units: a column against a column
    # of all-misses is the column's accuracy, and its interval matches the column's own within resampling noise.
    from spct.evaluate.scoring import Outcome
    from spct.types import Example, user

    outs = []
    for i in range(80):
        ex = Example(id=f"x{i}", source="t", category="c", messages=[user("q")], responses=["a", "b"], best=0)
        right = i % 5 != 0
        outs.append(Outcome(ex, [9, 1] if right else [1, 9], 1, 0 if right else 1, f"x{i}"))
    ci = bootstrap_ci(outs, "generic", "official", resamples=2000, seed=0)
    cells = {o.unit: [1.0 if o.totals[0] > o.totals[1] else 0.0, 1] for o in outs}
    zero = {u: [0.0, 1] for u in cells}
    d = paired_difference(cells, zero, resamples=2000, seed=0)
    assert d["difference"] == pytest.approx(0.8)
    assert abs(d["ci95"][0] - ci[0]) < 0.03 and abs(d["ci95"][1] - ci[1]) < 0.03


def test_a_reference_model_is_judged_beside_the_model_with_the_paired_difference(tmp_path):
    from surface_judges import SurfaceEngine

    settings = EvalSettings(ks=[1], sampling=SamplingParams(max_new_tokens=32, seed=0), bootstrap=300, baseline_draws=20)
    longer = SurfaceEngine("longer", lambda text: min(10, 1 + len(text) // 8))
    rep = evaluate(capital_counter(), {"rg": load(EVAL).examples}, settings, out_dir=tmp_path, progress=False,
                   model="capital-counter", reference=("coldstart", longer))
    e = rep["datasets"]["rg"]
    g, ref = e["results"]["greedy"], e["results"]["coldstart_greedy"]
    assert ref["judgments"] == g["judgments"] == 2 * e["n"] and ref["orders"] == "every rotation"
    d = e["differences"]["greedy - coldstart_greedy"]
    assert d["difference"] == pytest.approx(g["accuracy"] - ref["accuracy"]) and d["groups"] == g["distinct"]
    assert rep["reference"]["label"] == "coldstart"
    md = (tmp_path / "report.md").read_text()
    assert "| rg | generic | coldstart_greedy |" in md and "| rg | greedy - coldstart_greedy |" in md
    # the reference's critiques are in samples.jsonl under their own mode
    import json

    modes = {json.loads(line)["mode"] for line in (tmp_path / "samples.jsonl").read_text().splitlines()}
    assert modes == {"greedy", "coldstart_greedy", "sample"}
