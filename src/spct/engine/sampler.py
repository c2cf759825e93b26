"""Batched sampling: the one generation path RFT, GRPO, evaluation and serving share.

All (prompt, sample) requests of a call are generated together. Requests are
sorted by prompt length, cut into micro-batches that fit ``token_budget``
padded tokens, left-padded, and each micro-batch is ONE ``model.generate``.
Identical prompts inside a micro-batch (the ``n`` samples of a prompt, or
repeated shuffles) are prefilled once and their KV cache is copied to every
sample: on CPU the prompt forward dominates, so this is most of the speed-up
over a loop of single generations.

Under DeepSpeed ZeRO-3 with several ranks every forward pass is a collective (the
layers' parameters are gathered from all ranks), so ranks must make the same number
of forward calls even when they hold different prompts: ``generate`` then runs the
same number of micro-batches on every rank (padding with a discarded copy of the
first one) and ``model.generate(synced_gpus=True)`` keeps a finished rank stepping
until all are done. Otherwise the first rank to finish would leave the others
waiting forever in an all-gather.
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


def _all_max(values: Sequence[int], device: Any) -> list[int]:
    import torch
    import torch.distributed as dist

    t = torch.tensor(list(values), device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


def _run_batch(
    model: Any, tokenizer: Any, rows: list[list[int]], gen_config: Any, decode_steps: int, synced: bool = False
) -> list[list[int]]:
    """One micro-batch: prefill each distinct prompt once, copy its cache, one generate."""
    import torch
    from transformers import StaticCache

    unique: dict[tuple[int, ...], int] = {}
    owner = [unique.setdefault(tuple(r), len(unique)) for r in rows]
    distinct = [list(k) for k in unique]
    # In lockstep every rank must make the prefill call, which needs two positions at least.
    width = max(max(len(r) for r in distinct), 2 if synced else 1)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in distinct], device=model.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in distinct], device=model.device)
    take = torch.tensor(owner, device=model.device)

    cache = None
    if width > 1:
        # Prefill all but the last token; generate() then feeds the last one and decodes.
        # A pre-allocated cache: a growing one is re-concatenated at every decode step,
        # which copies every row's whole KV history (a third of decode time at 32 rows).
        # In lockstep a finished rank keeps stepping until the slowest peer is done: room for its steps too.
        cache = StaticCache(config=model.config, max_cache_len=width + decode_steps)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        model(
            input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        )
        if len(distinct) != len(rows):
            cache.reorder_cache(take)
    out = model.generate(
        input_ids=ids[take], attention_mask=mask[take], past_key_values=cache, generation_config=gen_config,
        synced_gpus=synced,
    )
    return out[:, width:].tolist()


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
    n_batches, decode_steps = (
        _all_max([len(batches), params.max_new_tokens], model.device) if synced else (len(batches), params.max_new_tokens)
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
                outs = _run_batch(model, tokenizer, rows, gen_config, decode_steps, synced=synced)
            for r, ids in zip(batch or [], outs):
                completions[r] = ids

    stop_set = set(stops)
    result: list[list[Generation]] = [[] for _ in encoded]
    for r, p in enumerate(requests):
        ids, finished = _trim(completions[r], stop_set, tokenizer.pad_token_id)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        result[p].append(Generation(text, len(encoded[p]), ids, finished))
    return result
