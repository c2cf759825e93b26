"""The shared-prefix sampler: the judge instruction prefilled once, greedy output unchanged.

Every micro-batch is laid out as shared prefix | padding | own suffix; the reference
is the plainest thing there is: one unpadded, unbatched ``model.generate`` per prompt.
"""

from __future__ import annotations

import inspect
import os
import socket

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.engine import SamplingParams, build_tiny, generate  # noqa: E402
from spct.engine import sampler  # noqa: E402
from spct.engine.sampler import (  # noqa: E402
    _generation_config,
    _run_batch,
    _trim,
    cache_kwarg,
    common_prefix,
    layout,
    stop_token_ids,
)
from spct.grm.prompt import build_chat, render  # noqa: E402
from spct.types import user  # noqa: E402

NEW = 24
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=NEW)

# Judge prompts of different lengths: two- and three-response prompts (the multi-response
# instruction), a one-response prompt (the single one: a shorter common prefix) and a hinted one.
ITEMS = [
    ("What is 2 + 2?", ["4", "5"], None),
    ("Write a Python function that returns the square of a number, with a docstring.",
     ["def sq(x):\n    return x * x", "Multiply x by itself."], None),
    ("Hi", ["Hello! How can I help you today?"], None),
    ("Explain why the sky is blue in two sentences. " * 3, ["Rayleigh scattering.", "Because it is.", "Blue light."], None),
    ("Sort 3, 1, 2.", ["1, 2, 3", "3, 2, 1"], 0),
    ("Name a colour of the sky on a clear day.", ["Blue.", "Green, mostly, with purple stripes."], None),
]


@pytest.fixture(scope="module")
def prompts(tiny):
    _, tok = tiny
    return [render(tok, build_chat([user(q)], rs, hint)) for q, rs, hint in ITEMS]


def reference(model, tok, prompts, params=GREEDY, stops=None):
    """One unpadded model.generate per prompt, batch 1, no cache handed in: today's semantics, plainly."""
    stops = stops or stop_token_ids(tok)
    cfg = _generation_config(tok, params, stops)
    out = []
    for p in prompts:
        ids = tok(p, add_special_tokens=False).input_ids
        with torch.inference_mode():
            seq = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 generation_config=cfg)
        out.append(_trim(seq[0, len(ids):].tolist(), set(stops), tok.pad_token_id)[0])
    return out


@pytest.fixture(scope="module")
def expected(tiny, prompts):
    model, tok = tiny
    ref = reference(model, tok, prompts)
    # The random model's greedy output depends on the prompt, so equality has teeth.
    assert len({tuple(r) for r in ref}) > 3
    return ref


def ids_of(out):
    return [[g.completion_ids for g in gs] for gs in out]


def test_common_prefix_and_layout():
    assert common_prefix([[1, 2, 3], [1, 2, 3]]) == 3
    assert common_prefix([[1, 2], [3, 2]]) == 0
    # Identical prompts: every row still keeps its last token for generate() to feed.
    p, ids, mask = layout([[5, 6, 7], [5, 6, 7]], pad=0)
    assert p == 2 and ids == [[5, 6, 7]] * 2 and mask == [[1, 1, 1]] * 2
    # Padding between prefix and suffix, never to the left; lockstep keeps two suffix tokens.
    p, ids, mask = layout([[5, 6, 7], [5, 6, 8, 9, 10]], pad=0, min_suffix=2)
    assert p == 1 and ids == [[5, 0, 0, 6, 7], [5, 6, 8, 9, 10]] and mask == [[1, 0, 0, 1, 1], [1] * 5]
    p, ids, mask = layout([[4]], pad=0, min_suffix=2)
    assert p == 0 and ids == [[0, 4]] and mask == [[0, 1]]
    # Whatever the rows, the unmasked tokens of each laid-out row are exactly its prompt's ids (the sampler
    # relies on this; it once asserted it on every micro-batch of every generation).
    rows = [[9, 8, 7, 6], [9, 8, 1], [9, 8, 7, 6, 5, 4], [9], [9, 8, 7, 6]]
    for min_suffix in (1, 2):
        _, ids, mask = layout(rows, pad=0, min_suffix=min_suffix)
        assert [[t for t, m in zip(i, k) if m] for i, k in zip(ids, mask)] == rows


def test_judge_prompts_share_the_instruction(tiny, prompts):
    _, tok = tiny
    enc = [tok(p, add_special_tokens=False).input_ids for p in prompts]
    pairs = [e for e, (_, rs, _) in zip(enc, ITEMS) if len(rs) == 2]
    # Pairs share the template's opening and the whole instruction: most of each prompt.
    assert common_prefix(pairs) > 0.5 * min(len(e) for e in pairs)
    # The instruction names the number of responses near its start, so one-, two- and
    # three-response prompts share only the first few tokens (the path still holds, see below).
    assert 0 < common_prefix(enc) < 40 < common_prefix(pairs)


@pytest.mark.parametrize(
    "groups",
    [
        [[0, 1, 2, 3, 4, 5]],  # everything in one call
        [[0], [1], [2], [3], [4], [5]],  # each alone: the prefix is the prompt minus its last token
        [[0, 1], [2, 3], [4, 5]],  # pairs with different suffix lengths
        [[3, 0, 3, 5, 1]],  # repeats: identical prompts share one suffix prefill
        [[2, 4]],  # one- and two-response instructions: the shortest common prefix
    ],
)
def test_greedy_equals_unpadded_reference(tiny, prompts, expected, groups):
    model, tok = tiny
    for g in groups:
        got = generate(model, tok, [prompts[i] for i in g], GREEDY)
        assert [x[0].completion_ids for x in got] == [expected[i] for i in g]


def test_greedy_equals_reference_across_micro_batches_and_samples(tiny, prompts, expected):
    model, tok = tiny
    lengths = sorted(len(tok(p, add_special_tokens=False).input_ids) for p in prompts)
    # A budget for about three rows: several micro-batches, each with its own prefix.
    budget = 3 * (lengths[-1] + NEW)
    small = SamplingParams(temperature=0.0, max_new_tokens=NEW, token_budget=budget)
    out = generate(model, tok, prompts, small, n=2)
    assert ids_of(out) == [[e, e] for e in expected]


def test_plain_chat_prompts_without_a_long_prefix(tiny):
    # Short chat prompts share only the template's opening: the path must not depend on a long prefix.
    model, tok = tiny
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in ("Is 2 + 2 = 4?", "Say yes.", "Is water wet? Explain briefly, please.")]
    got = generate(model, tok, prompts, GREEDY)
    assert [g[0].completion_ids for g in got] == reference(model, tok, prompts)
    # Raw text with no common first token at all: no prefix forward, suffixes only.
    raw = ["hello there", "The sky is blue because", "x = 2 * (3 + 4)"]
    enc = [tok(p, add_special_tokens=False).input_ids for p in raw]
    assert common_prefix(enc) == 0
    got = generate(model, tok, raw, GREEDY)
    assert [g[0].completion_ids for g in got] == reference(model, tok, raw)


def test_prefix_is_computed_once_per_micro_batch(tiny, prompts):
    # What the model is fed: the prefix at batch 1, then each distinct suffix once, then one-token decode steps.
    model, tok = tiny
    fed: list[tuple[int, int]] = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, args, out: fed.append(tuple(args[0].shape)))
    try:
        batch = [prompts[0], prompts[1], prompts[5], prompts[0]]  # three pairs, one repeated
        generate(model, tok, batch, SamplingParams(temperature=0.0, max_new_tokens=3, min_new_tokens=3))
    finally:
        hook.remove()
    enc = [tok(p, add_special_tokens=False).input_ids for p in batch[:3]]
    p = common_prefix(enc)
    suffix = max(len(e) for e in enc) - p
    assert p > 100  # the judge instruction
    assert fed[0] == (1, p)
    assert fed[1] == (3, suffix - 1)  # three distinct prompts; generate() feeds the last token
    assert fed[2:] == [(4, 1)] * 3  # the repeated prompt's cache was copied, not recomputed


def test_sampled_output_is_seeded(tiny, prompts):
    model, tok = tiny
    params = SamplingParams(temperature=1.0, max_new_tokens=12, seed=3)
    a = generate(model, tok, prompts, params, n=3)
    torch.manual_seed(99)  # the caller's RNG state must not matter
    b = generate(model, tok, prompts, params, n=3)
    assert ids_of(a) == ids_of(b)
    assert ids_of(a) != ids_of(generate(model, tok, prompts, SamplingParams(temperature=1.0, max_new_tokens=12, seed=4), n=3))


@pytest.fixture
def world_of_one():
    """A one-rank gloo group, so generate(synced_gpus=True) can run in this process."""
    import torch.distributed as dist

    if dist.is_initialized():
        pytest.skip("a process group already exists in this process")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_lockstep_makes_the_same_forward_calls_whatever_the_prompts(tiny, prompts, expected, world_of_one):
    # Under ZeRO-3 each forward is a collective: every micro-batch must make exactly two prefill
    # forwards (prefix, suffix) whether or not its prompts share a prefix or have a suffix at all.
    model, tok = tiny
    stops = stop_token_ids(tok)
    cfg = _generation_config(tok, SamplingParams(temperature=0.0, max_new_tokens=4), stops)
    cases = {
        "judge prompts": [tok(prompts[i], add_special_tokens=False).input_ids for i in (0, 1, 3)],
        "one prompt": [tok(prompts[2], add_special_tokens=False).input_ids],
        "no common token": [tok(t, add_special_tokens=False).input_ids for t in ("hello there", "The sky is")],
        "one-token prompts": [[5], [9]],
    }
    name = cache_kwarg(model)
    for what, rows in cases.items():
        calls = []

        def count(module, args, kwargs):
            calls.append(1)

        hook = model.register_forward_pre_hook(count, with_kwargs=True)
        real_generate = model.generate

        def generate_after_prefill(**kw):
            calls.append("generate")
            return real_generate(**kw)

        model.generate = generate_after_prefill
        try:
            with torch.inference_mode():
                out = _run_batch(model, tok, rows, cfg, decode_steps=4, synced=True, cache_name=name)
        finally:
            hook.remove()
            del model.generate
        assert calls.index("generate") == 2, what
        if what == "judge prompts":
            ref = reference(model, tok, [prompts[i] for i in (0, 1, 3)], SamplingParams(temperature=0.0, max_new_tokens=4))
            assert [_trim(o, set(stops), tok.pad_token_id)[0] for o in out] == ref


def _stop_positions(ref, token):
    return [r.index(token) + 1 if token in r else None for r in ref]


def _batches_expected(stop_at, n, chunk):
    """Decode batch sizes when rows leave between generate() calls of ``chunk`` steps."""
    active, done, out = list(range(len(stop_at))), 0, []
    while active and done < n:
        steps = min(chunk, n - done)
        ends = [stop_at[r] for r in active]
        if all(e is not None and e <= done + steps for e in ends):
            steps = max(ends) - done  # generate() ends when every row has stopped
        out += [len(active)] * steps
        active = [r for r in active if stop_at[r] is None or stop_at[r] > done + steps]
        done += steps
    return out


@pytest.mark.parametrize("synced", [False, True])
def test_rows_that_stop_leave_the_batch(tiny, prompts, monkeypatch, synced, request):
    # The random model never says EOS, so a token it does say is made a stop token: the rows
    # then stop at different steps, some in the first generate() call, some later, one never.
    model, tok = tiny
    n = 40
    free = reference(model, tok, prompts, SamplingParams(temperature=0.0, max_new_tokens=n))
    token = max(sorted({t for r in free for t in r}), key=lambda t: len(set(_stop_positions(free, t))))
    stop_at = _stop_positions(free, token)
    chunk = sampler.DECODE_CHUNK
    assert None in stop_at and any(a is not None and a <= chunk for a in stop_at) and any(
        a is not None and a > chunk for a in stop_at
    ), stop_at
    stops = [tok.eos_token_id, token]
    monkeypatch.setattr(sampler, "stop_token_ids", lambda _: stops)
    params = SamplingParams(temperature=0.0, max_new_tokens=n)
    expected = reference(model, tok, prompts, params, stops=stops)
    assert [len(e) for e in expected] == [a or n for a in stop_at]

    fed: list[int] = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, args, out: fed.append(args[0].shape[0]))
    try:
        if synced:
            request.getfixturevalue("world_of_one")
            cfg = _generation_config(tok, params, stops)
            rows = [tok(p, add_special_tokens=False).input_ids for p in prompts]
            with torch.inference_mode():
                out = _run_batch(model, tok, rows, cfg, decode_steps=n, synced=True, cache_name=cache_kwarg(model))
            got = [_trim(o, set(stops), tok.pad_token_id)[0] for o in out]
        else:
            got = [g[0].completion_ids for g in generate(model, tok, prompts, params)]
    finally:
        hook.remove()
    assert got == expected
    # Two prefill forwards, then the decode steps: finished rows left the batch between calls.
    assert fed[2:] == _batches_expected(stop_at, n, chunk)

    if not synced:  # sampled: still seeded with rows leaving
        hot = SamplingParams(temperature=1.0, max_new_tokens=n, seed=5)
        assert ids_of(generate(model, tok, prompts, hot, n=2)) == ids_of(generate(model, tok, prompts, hot, n=2))


class _New(torch.nn.Module):
    def forward(self, input_ids=None, attention_mask=None, cache=None, **kwargs):
        raise NotImplementedError  # only the signature is read


class _Old(torch.nn.Module):
    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, **kwargs):
        raise NotImplementedError


class _Wrapper(torch.nn.Module):
    """What PEFT and DeepSpeed look like from outside: forward(*args, **kwargs), the model inside."""

    def __init__(self, inner, attr):
        super().__init__()
        setattr(self, attr, inner)

    def forward(self, *args, **kwargs):
        raise NotImplementedError


class _Peft(_Wrapper):
    def get_base_model(self):
        return self.base


def test_cache_keyword_follows_the_installed_signature(tiny):
    model, _ = tiny
    assert cache_kwarg(_New()) == "cache"
    assert cache_kwarg(_Old()) == "past_key_values"
    assert cache_kwarg(_Wrapper(_New(), "module")) == "cache"  # DeepSpeed engine -> .module
    assert cache_kwarg(_Peft(_New(), "base")) == "cache"  # PEFT -> get_base_model()
    assert cache_kwarg(_Wrapper(_Wrapper(_Old(), "model"), "module")) == "past_key_values"
    # The installed transformers: whichever name its forward takes (past_key_values in 5.23, cache from 5.24).
    assert cache_kwarg(model) in inspect.signature(model.forward).parameters


def test_lora_model_generates_through_the_prefix_path(tiny, prompts, expected):
    peft = pytest.importorskip("peft")
    model, tok = tiny
    lora = peft.get_peft_model(build_tiny(0)[0], peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert cache_kwarg(lora) in inspect.signature(lora.get_base_model().forward).parameters
    # LoRA's B starts at zero, so the wrapped model must still produce the base model's tokens.
    got = generate(lora.eval(), tok, prompts[:3], GREEDY)
    assert [g[0].completion_ids for g in got] == expected[:3]


@pytest.mark.slow
def test_demo_model_greedy_equals_unpadded_reference():
    from spct.config import load_profile
    from spct.data import load
    from spct.engine import Engine
    from spct.grm.judge import rotations
    from spct.grm.prompt import special_strings

    engine = Engine.load("demo")
    model, tok = engine.model, engine.tokenizer
    # The demo profile's evaluation items, both orders: real judge prompts of different lengths.
    examples = load(load_profile("demo").eval.data[0]).examples[:4]
    specials = special_strings(tok)
    prompts = [render(tok, build_chat(ex.messages, [ex.responses[i] for i in perm], None, specials))
               for ex in examples for perm in rotations(ex.n)]
    prompts.append(engine.render([{"role": "user", "content": "What is the capital of France? Answer in one word."}]))
    params = SamplingParams(temperature=0.0, max_new_tokens=48)
    expected = reference(model, tok, prompts, params)
    lengths = [len(tok(p, add_special_tokens=False).input_ids) for p in prompts]
    assert len(set(lengths)) > 2
    assert [g[0].completion_ids for g in generate(model, tok, prompts, params)] == expected
    # Split into micro-batches of about three rows, each with its own prefix.
    small = SamplingParams(temperature=0.0, max_new_tokens=48, token_budget=3 * (max(lengths) + 48))
    assert [g[0].completion_ids for g in generate(model, tok, prompts, small)] == expected

