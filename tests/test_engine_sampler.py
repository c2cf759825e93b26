"""Batched sampling on the real tiny model: shapes, trimming, padding, budget, seeds.

The shared-prefix layout itself (prefix | pad | suffix) is tested in test_engine_prefix.py.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.engine import SamplingParams, build_tiny, generate  # noqa: E402
from spct.engine.sampler import plan_batches, stop_token_ids  # noqa: E402
from spct.grm.prompt import build_chat, render  # noqa: E402
from spct.types import user  # noqa: E402

GREEDY = SamplingParams(temperature=0.0, max_new_tokens=10)


@pytest.fixture(scope="module")
def prompts(tiny):
    _, tok = tiny
    # Different lengths, so batching needs real padding (between the shared prefix and each suffix).
    items = [
        ("What is 2 + 2?", ["4", "5"]),
        ("Write a Python function that returns the square of a number, with a docstring.",
         ["def sq(x):\n    return x * x", "Multiply x by itself."]),
        ("Hi", ["Hello! How can I help you today?"]),
        ("Explain why the sky is blue in two sentences. " * 3, ["Rayleigh scattering.", "Because it is.", "Blue light."]),
    ]
    return [render(tok, build_chat([user(q)], rs)) for q, rs in items]


def test_shapes_and_trimming(tiny, prompts):
    model, tok = tiny
    out = generate(model, tok, prompts, SamplingParams(temperature=1.0, max_new_tokens=7), n=3)
    assert len(out) == len(prompts) and all(len(g) == 3 for g in out)
    for p, gens in zip(prompts, out):
        n_prompt = len(tok(p, add_special_tokens=False).input_ids)
        for g in gens:
            assert g.prompt_tokens == n_prompt
            assert 1 <= g.completion_tokens <= 7
            assert tok.pad_token_id not in g.completion_ids
            assert g.finished == (g.completion_ids[-1] == tok.eos_token_id)
            if not g.finished:
                assert g.completion_tokens == 7
            assert g.text == tok.decode(g.completion_ids, skip_special_tokens=True)
            assert "<|im_start|>" not in g.text and "assistant" not in g.text[:10]


def test_batched_equals_unbatched_under_greedy(tiny, prompts):
    model, tok = tiny
    batched = generate(model, tok, prompts, GREEDY, n=2)
    for p, gens in zip(prompts, batched):
        (alone,) = generate(model, tok, [p], GREEDY)[0]
        assert [g.completion_ids for g in gens] == [alone.completion_ids] * 2
    # The random model's greedy output depends on the prompt, so the check has teeth.
    assert len({tuple(g[0].completion_ids) for g in batched}) > 1


def test_token_budget_splits_and_restores_order(tiny, prompts):
    model, tok = tiny
    lengths = [len(tok(p, add_special_tokens=False).input_ids) for p in prompts]
    budget = 2 * (max(lengths) + GREEDY.max_new_tokens)
    assert len(plan_batches([x for x in lengths for _ in range(2)], GREEDY.max_new_tokens, budget)) >= 4
    small = generate(model, tok, prompts, SamplingParams(temperature=0.0, max_new_tokens=10, token_budget=budget), n=2)
    one = generate(model, tok, prompts, GREEDY, n=2)
    assert [[g.completion_ids for g in gs] for gs in small] == [[g.completion_ids for g in gs] for gs in one]


def test_plan_batches_respects_budget():
    lengths = [30, 5, 12, 5, 40, 1]
    batches = plan_batches(lengths, max_new_tokens=10, token_budget=100)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 10) <= 100
    # A request larger than the budget still runs, alone.
    assert plan_batches([500, 3], 10, 100) == [[1], [0]]


def test_seed_reproducibility(tiny, prompts):
    model, tok = tiny
    params = SamplingParams(temperature=1.0, max_new_tokens=8, seed=7)
    a = generate(model, tok, prompts, params, n=4)
    torch.manual_seed(123)  # the caller's global RNG state must not matter
    b = generate(model, tok, prompts, params, n=4)
    c = generate(model, tok, prompts, SamplingParams(temperature=1.0, max_new_tokens=8, seed=8), n=4)
    ids = lambda out: [[g.completion_ids for g in gs] for gs in out]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    # Samples of one prompt differ from each other (each row draws its own tokens).
    assert len({tuple(g.completion_ids) for g in a[0]}) > 1


def test_finished_on_eos_and_min_new_tokens():
    # Teach a fresh tiny model to answer "Yes<|im_end|>" so EOS really gets generated.
    # Short chat prompts keep this to a few seconds; the judge prompts are ~150 tokens each.
    model, tok = build_tiny(0)
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in ("Is 2 + 2 = 4?", "Say yes.", "Is water wet?")]
    target = tok("Yes<|im_end|>", add_special_tokens=False).input_ids
    seqs = [tok(p, add_special_tokens=False).input_ids + target for p in prompts]
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    model.train()
    for _ in range(40):
        for s in seqs:
            ids = torch.tensor([s])
            labels = ids.clone()
            labels[:, : len(s) - len(target)] = -100
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    out = generate(model, tok, prompts, SamplingParams(temperature=0.0, max_new_tokens=6), n=2)
    for gens in out:
        for g in gens:
            assert g.finished and g.text == "Yes" and g.completion_ids == target
    # min_new_tokens forbids the stop token until the length is reached.
    forced = generate(model, tok, prompts[:2], SamplingParams(temperature=0.0, max_new_tokens=6, min_new_tokens=6))
    assert all(g[0].completion_tokens == 6 for g in forced)
    cut = generate(model, tok, prompts[:2], SamplingParams(temperature=0.0, max_new_tokens=1))
    assert all(not g[0].finished and g[0].completion_tokens == 1 for g in cut)


def test_stop_tokens_and_bad_input(tiny):
    model, tok = tiny
    assert stop_token_ids(tok) == [tok.eos_token_id]
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        generate(model, tok, ["hi", ""], GREEDY)
    with pytest.raises(ValueError, match="n must be"):
        generate(model, tok, ["hi"], GREEDY, n=0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingParams(temperature=-1)
