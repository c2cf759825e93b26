"""Surface baselines: a judge that never reads the question must not pass for a GRM.

The capital-letter counter (tests/surface_judges.py) scored 79.7% on the old demo held-out set,
"above baselines" when only position baselines were shown. Beside the response-only classifier it
is no longer above its baselines, and the gate refuses it.
"""

import pytest

from spct.data import load
from spct.engine import SamplingParams
from spct.evaluate.harness import EvalSettings, evaluate
from spct.evaluate.surface import FOLDS, Fit, _fold, fit_response_only, length_scores, surface_scores
from spct.pipeline.stages import gate_metrics
from spct.registry.gate import GatePolicy, decide
from spct.types import Example, user
from surface_judges import capital_counter

OLD_DEMO_EVAL = "builtin:verifiable?n=64&seed=0&categories=string_ops&modes=uppercase,acronym&split=heldout"
OLD_DEMO_TRAIN = "builtin:verifiable?n=200&seed=1&categories=string_ops&modes=uppercase,acronym&split=train"


@pytest.fixture(scope="module")
def counter_report(tmp_path_factory):
    settings = EvalSettings(ks=[1, 2], sampling=SamplingParams(max_new_tokens=32, seed=0), bootstrap=300, baseline_draws=20)
    data = {"old-demo": load(OLD_DEMO_EVAL).examples}
    return evaluate(capital_counter(), data, settings, out_dir=tmp_path_factory.mktemp("counter"), progress=False,
                    model="capital-counter", train=load(OLD_DEMO_TRAIN).examples)


def test_capital_counter_is_not_above_the_surface_baselines(counter_report):
    e = counter_report["datasets"]["old-demo"]
    g = e["results"]["greedy"]
    # It does look good beside position alone: its interval clears chance, first and last slot ...
    position = max(g["baselines"][b] for b in ("chance", "first_slot", "last_slot"))
    assert g["accuracy"] > 0.65 and g["ci95"][0] > position
    # ... but a classifier of the responses alone does as well, so no column is "above baselines".
    assert g["baselines"]["response_only"] >= g["ci95"][0]
    assert not any(res["above_baselines"] for res in e["results"].values())
    assert e["surface"]["fitted_on"] == "training items"
    # The old set's repeats are visible: fewer distinct items than items.
    assert e["distinct"] < e["items"] == 64


def test_gate_refuses_the_capital_counter(counter_report):
    gm = gate_metrics(counter_report, "voting@2", "old-demo")
    d = decide(gm, None, GatePolicy())
    assert not d.promote
    assert any("baselines" in r for r in d.reasons)


def test_report_shows_surface_baselines_and_distinct_items(counter_report):
    from pathlib import Path

    md = Path(counter_report["files"]["report.md"]).read_text()
    assert "response-only" in md and "longest" in md and "shortest" in md and "distinct" in md
    assert "response-only baseline fitted on training items" in md
    assert "## old-demo: per mistake type" in md


def _ex(i, question, responses, best=0):
    return Example(id=f"x{i}", source="generic", messages=[user(question)], responses=responses, best=best)


def test_response_only_classifier_never_reads_the_question():
    train = [_ex(i, f"Write word {i} in uppercase.", [w.upper(), w.lower()], 0)
             for i, w in enumerate("apple river stone cloud bread tiger lemon paper glass honey".split())]
    model = fit_response_only(train)
    a = _ex(100, "Write 'mango' in uppercase.", ["mango", "MANGO"], 1)
    b = _ex(101, "Spell 'mango' backwards.", ["mango", "MANGO"], 1)  # same responses, another question
    assert model.scores(a) == model.scores(b)
    assert model.scores(a)[1] > model.scores(a)[0]  # capitals are what it learned


def test_response_only_needs_two_classes():
    with pytest.raises(ValueError, match="one class"):
        fit_response_only([Example(id="r", source="generic", messages=[user("q")], responses=["a"], labels=[7.0])])


def test_cross_fitting_keeps_copies_in_one_fold():
    exs = [_ex(i, f"q{i % 7}", [f"A{i % 7}", f"b{i % 7}"]) for i in range(40)]
    groups = {ex.id: ex.messages[0].content for ex in exs}  # copies share a group
    scores, info = surface_scores(exs, groups, Fit())
    assert "cross-fitted" in info["fitted_on"]
    assert all("response_only" in scores[ex.id] for ex in exs)
    folds = {}
    for ex in exs:
        folds.setdefault(groups[ex.id], set()).add(_fold(groups[ex.id], 0))
    assert all(len(f) == 1 for f in folds.values()) and len({next(iter(f)) for f in folds.values()}) <= FOLDS


def test_length_baselines_tie_on_equal_lengths():
    ex = _ex(0, "q", ["abc", "xyz", "hello"])
    assert length_scores(ex, True) == [3.0, 3.0, 5.0] and length_scores(ex, False) == [-3.0, -3.0, -5.0]


def test_cross_fitting_never_scores_an_item_with_a_model_that_saw_it():
    # Each item's answers are unique random tokens: only a model that saw the item can know which is right.
    import random

    rng = random.Random(0)
    exs = []
    for i in range(60):
        a, b = (f"tok{rng.randrange(10**9)}" for _ in range(2))
        exs.append(_ex(i, f"q{i}", [a, b], best=rng.randrange(2)))
    groups = {ex.id: ex.id for ex in exs}
    scores, _ = surface_scores(exs, groups, Fit())
    right = sum(max(range(2), key=lambda k: scores[ex.id]["response_only"][k]) == ex.best for ex in exs)
    seen = fit_response_only(exs)  # in-sample: it memorises the answers
    memorised = sum(max(range(2), key=lambda k: seen.scores(ex)[k]) == ex.best for ex in exs)
    assert memorised >= 55 and right <= 42, (memorised, right)
