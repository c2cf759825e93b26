"""The built-in verifiable dataset: deterministic, and its best answers are right."""

import re

import pytest

from spct.data import correct_answer, generate_verifiable, load
from spct.data.errors import DataError
from spct.data.synthetic import KINDS


def _truth(meta):
    """Recompute the answer from the question's inputs, independently of the generator."""
    p, kind = meta["params"], meta["kind"]
    if kind == "arithmetic":
        return str({"+": p["a"] + p["b"], "-": p["a"] - p["b"], "×": p["a"] * p["b"]}[p["op"]])
    if kind == "unit_conversion":
        v = p["value"] * p["factor"]
        return str(int(v)) if float(v).is_integer() else str(v)
    if kind == "sorting":
        return ", ".join(map(str, sorted(p["items"], reverse=p["order"] == "descending")))
    if kind == "counting":
        t = p["text"]
        return str({"letter": lambda: t.count(p.get("letter", "")), "vowels": lambda: sum(c in "aeiou" for c in t), "words": lambda: len(t.split())}[p["mode"]]())
    t = p["text"]
    return '"' + {"reverse": t[::-1], "uppercase": t.upper(), "acronym": "".join(w[0] for w in t.split()).upper()}[p["mode"]] + '"'


def _stated(response):
    return re.search(r"(?:answer is|Answer:|It is) (.+?)\.?$", response).group(1)


@pytest.mark.parametrize("n_responses", [2, 3, 4])
def test_best_is_correct_and_others_wrong(n_responses):
    exs = generate_verifiable(100, seed=5, n_responses=n_responses)
    assert {e.category for e in exs} == set(KINDS)
    for e in exs:
        truth = _truth(e.meta)
        assert correct_answer(e) == truth
        assert e.n == n_responses and len(set(e.responses)) == n_responses
        assert _stated(e.responses[e.best]) == truth, e
        for k, r in enumerate(e.responses):
            rm = e.meta["response_meta"][k]
            assert rm["correct"] == (k == e.best) and (rm["reason"] is None) == (k == e.best)
            if k != e.best:
                assert _stated(r) != truth
        assert e.labels == [1.0 if k == e.best else 0.0 for k in range(e.n)]
    assert len({e.best for e in exs}) == n_responses  # the correct one moves around


def test_deterministic_and_seeded():
    a = [e.model_dump() for e in generate_verifiable(30, seed=1, n_responses=3)]
    assert a == [e.model_dump() for e in generate_verifiable(30, seed=1, n_responses=3)]
    assert a != [e.model_dump() for e in generate_verifiable(30, seed=2, n_responses=3)]
    assert a[:10] == [e.model_dump() for e in generate_verifiable(10, seed=1, n_responses=3)]


def test_builtin_spec_and_bad_options():
    assert len(load("builtin:verifiable").examples) == 200
    res = load("builtin:verifiable?n=50&seed=3&responses=3&categories=sorting,counting")
    assert len(res.examples) == 50 and {e.n for e in res.examples} == {3}
    assert {e.category for e in res.examples} == {"sorting", "counting"}
    with pytest.raises(ValueError, match="between 2 and 4"):
        load("builtin:verifiable?responses=5")
    with pytest.raises(ValueError, match="unknown categories"):
        generate_verifiable(3, categories=["poetry"])


def test_modes_narrow_a_category_deterministically_and_stay_correct():
    spec = "builtin:verifiable?n=30&seed=1&categories=string_ops,counting&modes=uppercase,vowels"
    exs = load(spec).examples
    assert {(e.category, e.meta["params"]["mode"]) for e in exs} == {("string_ops", "uppercase"), ("counting", "vowels")}
    assert [e.model_dump() for e in exs] == [e.model_dump() for e in load(spec).examples]
    for e in exs:
        assert correct_answer(e) == _truth(e.meta) == _stated(e.responses[e.best])
    with pytest.raises(ValueError, match="do not fit categories"):
        load("builtin:verifiable?n=3&categories=string_ops&modes=vowels")
    with pytest.raises(ValueError, match="do not fit categories"):
        load("builtin:verifiable?n=3&categories=arithmetic,string_ops&modes=uppercase")  # arithmetic has no modes


@pytest.mark.parametrize("responses", [2, 3, 4])
def test_gold_position_is_balanced_exactly(responses):
    # Every block of `responses` items holds each gold slot once: a judge that always names one
    # slot scores exactly 1/responses on any whole number of blocks, and about that on a prefix.
    exs = load(f"builtin:verifiable?n={responses * 30}&seed=4&responses={responses}&split=heldout").examples
    counts = [sum(e.best == p for e in exs) for p in range(responses)]
    assert counts == [30] * responses
    for start in range(0, len(exs), responses):
        assert sorted(e.best for e in exs[start : start + responses]) == list(range(responses))
    assert all(e.labels[e.best] == 1.0 and e.meta["response_meta"][e.best]["correct"] for e in exs)


def test_split_names_the_items_and_rejects_unknown_splits():
    assert load("builtin:verifiable?n=2&split=heldout").examples[0].id == "verifiable/heldout/0/0"
    with pytest.raises(DataError, match="split must be one of all, train, heldout"):
        load("builtin:verifiable?n=2&split=test")
