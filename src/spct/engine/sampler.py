"""Batched sampling: the one generation path RFT, GRPO, evaluation and serving share.

All (prompt, sample) requests of a call are generated together. Requests are
sorted by prompt length and cut into micro-batches that fit ``token_budget``
padded tokens. Judge prompts begin with the same ~180 tokens (chat template
system line + judge instruction), so each micro-batch is laid out as shared
prefix | padding | own suffix: the prefix is prefilled once at batch 1 and its
KV cache copied to every row, then each distinct suffix (identical prompts, the
``n`` samples of one, share one) is prefilled once and its cache copied to
every sample. The padding sits between prefix and suffix, masked out, and
position ids count real tokens only, so every row sees the positions it would
unpadded. Decoding then runs in ``model.generate`` calls of ``DECODE_CHUNK``
steps, each continuing from the cache, and rows that have stopped leave the
batch between calls instead of being computed until the longest critique of
the batch is done. On the demo's evaluation (docs/benchmarks.md) the prefill
was about a third of the time and decoding finished rows most of the rest.

Under DeepSpeed ZeRO-3 with several ranks every forward pass is a collective (the
layers' parameters are gathered from all ranks), so ranks must make the same number
of forward calls even when they hold different prompts: ``generate`` then runs the
same number of micro-batches on every rank (padding with a discarded copy of the
first one), each micro-batch makes exactly one prefix and one suffix forward, every
rank makes the same ``generate`` calls (a rank with nothing left to decode makes a
throwaway one while a peer decodes on), and ``model.generate(synced_gpus=True)``
keeps a finished rank stepping until all are done. Otherwise the first rank to
finish would leave the others waiting forever in an all-gather.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.5  # 0 -> greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    token_budget: int = 8192  # padded tokens (prompt + new) per generate() micro-batch
    min_new_tokens: int = 0  # benchmarks set it to max_new_tokens to force equal lengths

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(f"min_new_tokens must be in 0..max_new_tokens, got {self.min_new_tokens}")
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {self.token_budget}")


@dataclass(frozen=True)
class Generation:
    text: str  # decoded completion only, special tokens stripped
    prompt_tokens: int
    completion_ids: list[int] = field(repr=False)  # up to and including EOS, no padding
    finished: bool  # True if EOS was produced, False if cut by max_new_tokens

    @property
    def completion_tokens(self) -> int:
        return len(self.completion_ids)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The tokenizer's EOS plus the chat template's end-of-turn token when it differs."""
    ids = []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    template = getattr(tokenizer, "chat_template", None) or ""
    for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>"):
        if marker in template:
            tid = tokenizer.convert_tokens_to_ids(marker)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
                ids.append(tid)
    if not ids:
        raise ValueError("the tokenizer has no eos token and its chat template no end-of-turn token")
    return ids


def plan_batches(lengths: Sequence[int], max_new_tokens: int, token_budget: int) -> list[list[int]]:
    """Request indices per micro-batch: sorted by length, ``batch * (longest + new) <= budget``.

    >>> plan_batches([5, 1, 3, 1], max_new_tokens=2, token_budget=12)
    [[1, 3], [2], [0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        # Sorted ascending, so request i is the longest of the batch if it joins.
        if cur and (len(cur) + 1) * (lengths[i] + max_new_tokens) > token_budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def _generation_config(tokenizer: Any, params: SamplingParams, stops: list[int]) -> Any:
    from transformers import GenerationConfig

    # generate() fills unset (None) fields from the checkpoint's generation_config and
    # then from global defaults (top_k=50), so every knob that changes the sampled
    # distribution is set here: the same SamplingParams mean the same on every model.
    sampling = params.temperature > 0
    return GenerationConfig(
        do_sample=sampling,
        temperature=params.temperature if sampling else 1.0,
        top_p=params.top_p if sampling else 1.0,
        top_k=0,
        typical_p=1.0,
        repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        max_new_tokens=params.max_new_tokens,
        min_new_tokens=params.min_new_tokens or None,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stops,
        bos_token_id=tokenizer.bos_token_id,
    )


def zero3_world(model: Any) -> int:
    """Ranks that must generate in lockstep: the world size if ``model`` is ZeRO-3 partitioned, else 1."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 1
    # DeepSpeed tags every partitioned parameter with ds_id (deepspeed.runtime.zero.partition_parameters).
    return dist.get_world_size() if any(hasattr(p, "ds_id") for p in model.parameters()) else 1


def all_reduce(values: Sequence[float], op: str, device: Any = None) -> list[float]:
    """``values`` summed (``op="sum"``) or maximised (``"max"``) over the ranks; as given in a lone
    process. NCCL reduces on ``device``, gloo on the CPU. Lockstep generation here and GRPO's dynamic
    sampling (spct.train.grpo) agree on counts through it."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                     device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def cache_kwarg(model: Any) -> str:
    """The keyword ``model``'s forward (and so ``generate``) takes the KV cache under.

    transformers renames ``past_key_values`` to ``cache`` from 5.24 and drops the old name in
    5.40/6.0, so the name is read from the installed model's signature rather than assumed.
    Wrappers whose forward is ``(*args, **kwargs)`` (PEFT, DeepSpeed) are unwrapped to the model
    that names it; a model naming neither gets the old name, which every version before 5.24 takes.
    """
    import inspect

    seen: set[int] = set()
    m = model
    while m is not None and id(m) not in seen:
        seen.add(id(m))
        try:
            params = inspect.signature(m.forward).parameters
        except (AttributeError, TypeError, ValueError):
            params = {}
        for name in ("cache", "past_key_values"):  # the new name first: 5.24-5.39 take both, warning on the old
            if name in params:
                return name
        get_base = getattr(m, "get_base_model", None)  # PEFT
        inner = get_base() if callable(get_base) else None
        for attr in ("module", "model"):  # DeepSpeed/DDP engines; PEFT's inner LoraModel
            if inner is None or inner is m:
                inner = getattr(m, attr, None)
        m = inner
    return "past_key_values"


def common_prefix(rows: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix every row shares.

    >>> common_prefix([[1, 2, 3], [1, 2, 4, 5], [1, 2]])
    2
    """
    import os.path

    return len(os.path.commonprefix([list(r) for r in rows]))  # element-wise on any sequences, not only paths


def layout(rows: Sequence[Sequence[int]], pad: int, min_suffix: int = 1) -> tuple[int, list[list[int]], list[list[int]]]:
    """``(prefix length, ids, mask)``: each row as shared prefix | padding | its own suffix.

    Every row keeps at least ``min_suffix`` tokens after the prefix: ``generate`` feeds the last
    prompt token itself, and in lockstep each rank must also have a suffix forward to make.
    The prefix is cut from each prompt's own tokenisation, so prefix + suffix is exactly the
    prompt's ids (no re-tokenised boundary that a BPE merge could change).

    >>> layout([[7, 8, 1], [7, 8, 2, 3]], pad=0)
    (2, [[7, 8, 0, 1], [7, 8, 2, 3]], [[1, 1, 0, 1], [1, 1, 1, 1]])
    """
    p = max(0, min(common_prefix(rows), min(len(r) for r in rows) - min_suffix))
    s_width = max(max(len(r) - p for r in rows), min_suffix)
    ids, mask = [], []
    for r in rows:
        gap = s_width - (len(r) - p)
        ids.append(list(r[:p]) + [pad] * gap + list(r[p:]))
        mask.append([1] * p + [0] * gap + [1] * (len(r) - p))
    return p, ids, mask


# Decode steps per generate() call; finished rows leave the batch between calls. Fewer steps waste
# less on finished rows but copy the cache and set up generate() more often.
DECODE_CHUNK = 16


def _run_batch(
    model: Any,
    tokenizer: Any,
    rows: list[list[int]],
    gen_config: Any,
    decode_steps: int,
    synced: bool = False,
    cache_name: str = "past_key_values",
) -> list[list[int]]:
    """One micro-batch: the shared prefix prefilled once, each distinct suffix once, then decoded."""
    import torch
    from transformers import StaticCache

    unique: dict[tuple[int, ...], int] = {}
    owner = [unique.setdefault(tuple(r), len(unique)) for r in rows]
    distinct = [list(k) for k in unique]
    # In lockstep every rank must make the suffix forward, which needs two suffix positions at least.
    p, ids_l, mask_l = layout(distinct, tokenizer.pad_token_id, min_suffix=2 if synced else 1)
    width = len(ids_l[0])
    ids = torch.tensor(ids_l, device=model.device)
    mask = torch.tensor(mask_l, device=model.device)
    # The positions an unpadded prompt gets (pads do not count), so RoPE sees what it would alone;
    # generate() derives the same from the mask's cumsum for the tokens it feeds.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    take = torch.tensor(owner, device=model.device)

    # A pre-allocated cache: a growing one is re-concatenated at every decode step, which copies
    # every row's whole KV history (a third of decode time at 32 rows). In lockstep a finished
    # rank keeps stepping until the slowest peer is done: room for its steps too.
    cache = StaticCache(config=model.config, max_cache_len=width + decode_steps)
    kw = {cache_name: cache, "use_cache": True, "logits_to_keep": 1}
    if p:
        # The judge instruction (~180 tokens, identical for every item) is computed once, at batch 1,
        # and its KV copied to every distinct prompt: it was two thirds of every prompt's prefill.
        model(input_ids=ids[:1, :p], attention_mask=mask[:1, :p], position_ids=positions[:1, :p], **kw)
        if len(distinct) > 1:
            cache.reorder_cache(torch.zeros(len(distinct), dtype=torch.long, device=model.device))
    elif synced:
        # No shared prefix here, but a peer may have one: make the same forward call it makes.
        model(input_ids=ids[:1, :1], use_cache=False, logits_to_keep=1)
    if width - 1 > p:
        # Each distinct suffix, all but its last token (generate() feeds that one and decodes).
        model(input_ids=ids[:, p:-1], attention_mask=mask[:, :-1], position_ids=positions[:, p:-1], **kw)
    if len(distinct) != len(rows):
        cache.reorder_cache(take)  # identical prompts (the n samples of one) share one prefill
    return _decode(model, ids[take], mask[take], cache, gen_config, decode_steps, synced, cache_name)


def _decode(
    model: Any, ids: Any, mask: Any, cache: Any, gen_config: Any, decode_steps: int, synced: bool, cache_name: str
) -> list[list[int]]:
    """Decode ``ids`` (prompts, last token not yet in ``cache``) in ``generate`` calls of ``DECODE_CHUNK``
    steps, dropping the rows that have stopped between calls; the new tokens of every row.

    One ``generate`` for the whole batch keeps computing a row that has stopped until the
    longest is done, and judge critiques differ in length (the demo base model's from about
    20 to 128 tokens): most of a batch's decode steps could go to finished rows. Each call
    continues from the cache (``generate`` feeds the last token and derives positions from
    the mask), so a row's tokens are what one long call would give it.
    """
    import copy

    import torch

    stops = torch.tensor(gen_config.eos_token_id, device=ids.device)
    own_max, min_new = gen_config.max_new_tokens, gen_config.min_new_tokens or 0
    new: list[list[int]] = [[] for _ in range(ids.shape[0])]
    active = list(range(ids.shape[0]))  # the output row of each batch position
    spare = ids[:1, -1:]  # a one-token input for the lockstep filler below
    done = 0
    cfg = copy.deepcopy(gen_config)  # each call's length is set on this copy below
    while True:
        # In lockstep every rank takes the same chunk (decode_steps is the ranks' maximum).
        chunk = min(DECODE_CHUNK, decode_steps - done)
        steps = min(chunk, own_max - done)
        if active and steps > 0:
            cfg.max_new_tokens = steps
            cfg.min_new_tokens = min(max(min_new - done, 0), steps) or None
            seq = model.generate(
                input_ids=ids, attention_mask=mask, generation_config=cfg, synced_gpus=synced, **{cache_name: cache}
            )
            tail = seq[:, ids.shape[1]:]
            for pos, row in enumerate(active):
                new[row] += tail[pos].tolist()
            # A row stops at a stop token; generate() pads it after that and _trim cuts there.
            keep = (~torch.isin(tail, stops).any(-1)).nonzero().flatten()
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], tail.shape[1])], -1)
            ids = seq
            if len(keep) < len(active):
                if len(keep):
                    cache.reorder_cache(keep)
                ids, mask = ids[keep], mask[keep]
                active = [active[i] for i in keep.tolist()]
        elif synced:
            # Nothing left to decode here while a peer decodes on: a throwaway generate() of the same
            # chunk, whose synced steps follow the peers' one for one; its output is dropped.
            cfg.max_new_tokens, cfg.min_new_tokens = chunk, None
            model.generate(input_ids=spare, attention_mask=torch.ones_like(spare), generation_config=cfg, synced_gpus=True)
        done += chunk
        more = bool(active) and done < own_max
        if synced:
            more = done < decode_steps and all_reduce([int(more)], "max", ids.device)[0] > 0
        if not more:
            return new


def _trim(ids: list[int], stops: set[int], pad: int | None) -> tuple[list[int], bool]:
    for j, t in enumerate(ids):
        if t in stops:
            return ids[: j + 1], True
    # Unfinished rows are never padded (padding starts only after a stop), but be safe.
    while ids and pad is not None and pad not in stops and ids[-1] == pad:
        ids = ids[:-1]
    return ids, False


def generate(
    model: Any, tokenizer: Any, prompts: Sequence[str], params: SamplingParams, n: int = 1, progress: bool = False
) -> list[list[Generation]]:
    """``n`` completions for every rendered prompt, in prompt order.

    Reproducible run to run: micro-batch ``b`` samples under ``torch.manual_seed(seed + b)``.
    """
    import torch
    from tqdm.auto import tqdm

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; load it with spct.engine.load_model")
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    for i, e in enumerate(encoded):
        if not e:
            raise ValueError(f"prompt {i} is empty")
    requests = [p for p in range(len(encoded)) for _ in range(n)]  # request -> prompt index
    lengths = [len(encoded[p]) for p in requests]
    batches = plan_batches(lengths, params.max_new_tokens, params.token_budget)
    stops = stop_token_ids(tokenizer)
    gen_config = _generation_config(tokenizer, params, stops)
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    synced = zero3_world(model) > 1
    cache_name = cache_kwarg(model)
    n_batches, decode_steps = (
        map(int, all_reduce([len(batches), params.max_new_tokens], "max", model.device)) if synced
        else (len(batches), params.max_new_tokens)
    )
    if synced and not batches:
        raise ValueError("a ZeRO-3 rank with no prompts cannot keep its peers in lockstep; give every rank work")

    completions: list[list[int]] = [[] for _ in requests]
    with torch.inference_mode():
        for b in tqdm(range(n_batches), desc="generate", unit="batch", disable=not progress):
            batch = batches[b] if b < len(batches) else None  # None: a lockstep filler, its output dropped
            # A filler only has to make the same forward calls as its peers: one row is enough.
            rows = [encoded[requests[r]] for r in (batch if batch is not None else batches[0][:1])]
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(params.seed + b)
                outs = _run_batch(model, tokenizer, rows, gen_config, decode_steps, synced=synced, cache_name=cache_name)
            for r, ids in zip(batch or [], outs):
                completions[r] = ids

    stop_set = set(stops)
    result: list[list[Generation]] = [[] for _ in encoded]
    for r, p in enumerate(requests):
        ids, finished = _trim(completions[r], stop_set, tokenizer.pad_token_id)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        result[p].append(Generation(text, len(encoded[p]), ids, finished))
    return result
