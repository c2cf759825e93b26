"""Cold start's template critiques and presentation orders, and the rotation orders RFT/GRPO/meta RM
sample in: every order of a pair shown equally often, so a judge that names one slot earns nothing."""

import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.data import load  # noqa: E402
from spct.grm.parse import parse_judgment  # noqa: E402
from spct.grm.rules import is_strictly_right, permutation, sample_rng, to_original  # noqa: E402
from spct.train.coldstart import (  # noqa: E402
    PRINCIPLES,
    presentation,
    principle,
    template_critique,
)

ALL = "builtin:verifiable?n=40&seed=1&split=train"
PAIRS_AND_TRIPLES = [load(ALL).examples, load("builtin:verifiable?n=30&seed=2&responses=3&split=train").examples]


@pytest.mark.parametrize("examples", PAIRS_AND_TRIPLES, ids=["pairs", "triples"])
@pytest.mark.parametrize("template", ["full", "short", "reference"])
def test_template_critiques_parse_and_put_the_gold_strictly_on_top(examples, template):
    for ex in examples:
        for j in range(ex.n):
            perm, rng = presentation(ex.n, 0, f"coldstart:{ex.id}", j, "rotations")
            text, _ = template_critique(ex, perm, rng, template)
            judged = parse_judgment(text, ex.n)
            assert judged.ok, (ex.id, text)
            assert is_strictly_right(to_original(judged.scores, perm), ex.best), (ex.id, perm, text)
            assert len(judged.principles) == (2 if template == "full" else 1)


def test_short_template_states_the_items_own_principle_and_is_shorter():
    examples = load("builtin:verifiable?n=60&seed=1&split=train").examples
    modes = {ex.meta["params"].get("mode", ex.meta["kind"]) for ex in examples}
    assert modes <= set(PRINCIPLES)  # every kind and sub-kind has its own line, none falls back
    for ex in examples:
        perm = list(range(ex.n))
        short, _ = template_critique(ex, perm, sample_rng(0, ex.id, 0), "short")
        full, _ = template_critique(ex, perm, sample_rng(0, ex.id, 0), "full")
        assert principle(ex) in short and len(short) < len(full)
        assert short.count("\nResponse ") == ex.n and ("correct." in short) and ("wrong (" in short)
    sort = next(ex for ex in examples if ex.meta["kind"] == "sorting")
    assert sort.meta["params"]["order"] in principle(sort)
    with pytest.raises(ValueError, match="unknown template"):
        template_critique(examples[0], [0, 1], sample_rng(0, "x", 0), "long")


@pytest.mark.parametrize("n", [2, 3, 4])
def test_rotations_show_every_response_once_in_every_slot(n):
    for key in ("a", "b", "c"):
        seen = [presentation(n, 7, key, j, "rotations")[0] for j in range(2 * n)]
        for block in (seen[:n], seen[n:]):
            assert all(sorted(p) == list(range(n)) for p in block)
            for slot in range(n):
                assert sorted(p[slot] for p in block) == list(range(n))  # each response once per slot


def test_random_orders_are_the_previous_seeded_shuffles():
    # perms=1 (the tiny profile) keeps exactly the presentation it had before the orders knob.
    for j in range(3):
        perm, rng = presentation(4, 3, "coldstart:x", j, "random")
        ref = sample_rng(3, "coldstart:x", j)
        assert perm == permutation(4, ref) and rng.random() == ref.random()
    with pytest.raises(ValueError, match="unknown orders"):
        presentation(2, 0, "x", 0, "sideways")


def test_coldstart_rotations_balance_the_gold_slot():
    from spct.engine import load_model
    from spct.train.coldstart import coldstart_data

    _, tok = load_model("tiny", device="cpu")
    examples = load("builtin:verifiable?n=9&seed=1&split=train").examples
    data = coldstart_data(tok, examples, perms=2, seed=0, orders="rotations", template="short")
    assert len(data) == 18
    # the boxed scores of the two presentations of an item are in opposite slots
    texts = [tok.decode(d.completion_ids) for d in data]
    top = Counter()
    for t in texts:
        s = parse_judgment(t, 2).scores
        top[s.index(max(s))] += 1
    assert top[0] == top[1] == 9


@pytest.mark.parametrize("k", [2, 3, 4])
def test_judge_item_rotations_give_each_slot_the_gold_equally(k):
    from spct.train.rft import judge_item

    ex = load(ALL).examples[0]
    item = judge_item(ex, k, seed=5, orders="rotations")
    assert item.k == k and len(item.orders) == k
    gold_slots = Counter(o.index(ex.best) for o in item.orders)
    assert max(gold_slots.values()) - min(gold_slots.values()) <= k % 2  # balanced up to one odd sample
    assert item.orders[0] != item.orders[1]
    hinted = judge_item(ex, k, seed=5, orders="rotations", hint=True)
    assert hinted.hint == ex.best and hinted.orders == item.orders
    assert judge_item(ex, k, seed=5).orders is None  # random: the judge's own seeded shuffles
    with pytest.raises(ValueError, match="unknown orders"):
        judge_item(ex, k, seed=5, orders="sideways")


def test_profile_knobs_validate():
    from spct.config import load_profile

    p = load_profile("tiny", ["coldstart.template=short", "coldstart.orders=rotations", "rft.orders=rotations",
                              "grpo.orders=rotations", "metarm.fresh=true", "metarm.orders=rotations"])  # fmt: skip
    assert p.coldstart.template == "short" and p.grpo.orders == "rotations" and p.metarm.fresh
    assert load_profile("tiny").coldstart.orders == "random"  # the tiny profile's behaviour is unchanged
    with pytest.raises(Exception):
        load_profile("tiny", ["grpo.orders=sideways"])


@pytest.mark.parametrize("template", ["full", "short", "reference"])
def test_decision_spans_cover_each_verdict_and_the_scores(template):
    for ex in load("builtin:verifiable?n=40&seed=3&split=train").examples:
        perm, rng = presentation(ex.n, 0, f"coldstart:{ex.id}", 1, "rotations")
        text, spans = template_critique(ex, perm, rng, template)
        words = [text[a:b] for a, b in spans]
        truth = ["correct" if ex.meta["response_meta"][i]["correct"] else "wrong" for i in perm]
        assert words[:-1] == truth, (ex.id, text)
        assert "\\boxed{" + words[-1] + "}" in text and parse_judgment(text, ex.n).ok


def test_reference_template_sets_the_gold_beside_each_answer():
    ex = next(e for e in load("builtin:verifiable?n=40&seed=1&categories=string_ops&modes=acronym&split=train").examples)
    text, _ = template_critique(ex, [0, 1], sample_rng(0, ex.id, 0), "reference")
    gold = ex.meta["answer"]
    assert f"Reference answer: {gold}." in text
    for m in ex.meta["response_meta"]:
        assert f'{m["answer"]} vs {gold}: {"correct" if m["correct"] else "wrong"}.' in text


def test_verdict_weight_reaches_the_loss():
    """Weighted tokens count ``w`` times in the mean; with every weight 1 the loss is the plain mean."""
    import torch

    from spct.train.sft import SFTExample, collate, sft_loss

    plain = collate([SFTExample([5, 6], [8, 9, 10]), SFTExample([5], [8, 9])], pad_id=0)
    ones = collate([SFTExample([5, 6], [8, 9, 10], (1.0, 1.0, 1.0)), SFTExample([5], [8, 9])], pad_id=0)
    heavy = collate([SFTExample([5, 6], [8, 9, 10], (1.0, 4.0, 1.0)), SFTExample([5], [8, 9])], pad_id=0)
    assert "weights" not in plain and ones["weights"].tolist() == [[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]]
    logits = torch.randn(2, 5, 12)
    base, n = sft_loss(logits, plain["labels"])
    assert n == 5 and torch.allclose(sft_loss(logits, ones["labels"], ones["weights"])[0], base)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 12), plain["labels"][:, 1:].reshape(-1),
                                            ignore_index=-100, reduction="none").reshape(2, 4)
    want = (nll[0, 1] + 4 * nll[0, 2] + nll[0, 3] + nll[1, 0] + nll[1, 1]) / 8
    assert torch.allclose(sft_loss(logits, heavy["labels"], heavy["weights"])[0], want)
