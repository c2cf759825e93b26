"""Judging: prompt -> batched sampling -> parse -> scores in the original order -> vote.

Every consumer (evaluation, RFT and GRPO sampling, the serving predictor, the
``spct judge`` command) goes through :func:`sample_judgments`, so shuffling,
hinting and parsing behave the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from spct.grm.parse import Judgment, ParseFailure, parse_judgment
from spct.grm.prompt import build_chat, special_strings
from spct.grm.rules import (
    MetaRM,
    Vote,
    default_k_meta,
    meta_keep,
    permutation,
    pick_best,
    sample_rng,
    tied_best,
    to_original,
    vote,
)
from spct.types import Example, Message

if TYPE_CHECKING:
    from spct.engine import Engine, SamplingParams


@dataclass(frozen=True)
class JudgeItem:
    """What the GRM judges. ``hint`` is the original index of the best response (RFT hinted sampling)."""

    key: str
    messages: Sequence[Message]
    responses: Sequence[str]
    hint: int | None = None

    @classmethod
    def from_example(cls, ex: Example, hint: bool = False) -> "JudgeItem":
        return cls(ex.id, ex.messages, ex.responses, ex.best if hint else None)


@dataclass(frozen=True)
class Sample:
    """One sampled critique. ``scores`` are in the original response order (None = no parse)."""

    perm: list[int]
    prompt: str
    text: str
    result: Judgment | ParseFailure
    scores: list[int] | None
    prompt_tokens: int
    completion_ids: list[int] = field(repr=False)
    finished: bool

    @property
    def completion_tokens(self) -> int:
        return len(self.completion_ids)


def sample_judgments(
    engine: "Engine",
    items: Sequence[JudgeItem],
    k: int,
    params: "SamplingParams",
    *,
    shuffle: bool = True,
    progress: bool = False,
) -> list[list[Sample]]:
    """``k`` critiques per item, all items' samples generated in one batched call.

    Sample ``j`` of an item presents the responses in its own seeded order
    (``shuffle=False`` keeps the given order, e.g. for greedy decoding).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    perms: list[list[int]] = []
    prompts: list[str] = []
    specials = special_strings(engine.tokenizer)
    for item in items:
        n = len(item.responses)
        for j in range(k):
            perm = permutation(n, sample_rng(params.seed, item.key, j)) if shuffle else list(range(n))
            hint = perm.index(item.hint) if item.hint is not None else None
            chat = build_chat(item.messages, [item.responses[i] for i in perm], hint, specials)
            perms.append(perm)
            prompts.append(engine.render(chat))
    gens = engine.generate(prompts, params, n=1, progress=progress)

    out: list[list[Sample]] = []
    for idx, item in enumerate(items):
        row = []
        for j in range(k):
            flat = idx * k + j
            g = gens[flat][0]
            result = parse_judgment(g.text, len(item.responses))
            scores = to_original(result.scores, perms[flat]) if isinstance(result, Judgment) else None
            row.append(
                Sample(perms[flat], prompts[flat], g.text, result, scores, g.prompt_tokens, list(g.completion_ids), g.finished)
            )
        out.append(row)
    return out


@dataclass(frozen=True)
class Verdict:
    """The outcome of voting over an item's samples."""

    totals: list[int]
    best: int
    tied: list[int]  # every index sharing the top total (len > 1 means a tie was broken)
    used: int
    failed: int
    kept: list[int]  # sample indices that voted (all, or the meta RM's top k_meta)
    meta_scores: list[float] | None = None


def decide(
    key: str,
    samples: Sequence[Sample],
    n: int,
    *,
    seed: int = 0,
    meta_scores: Sequence[float] | None = None,
    k_meta: int | None = None,
) -> Verdict:
    """Vote (optionally meta-guided) and pick the best, ties broken by a seeded generator."""
    kept = list(range(len(samples)))
    if meta_scores is not None:
        kept = meta_keep(meta_scores, k_meta or default_k_meta(len(samples)))
    v: Vote = vote([samples[i].scores for i in kept], n)
    best = pick_best(v.totals, sample_rng(seed, key, -1))
    return Verdict(v.totals, best, tied_best(v.totals), v.used, v.failed, kept, list(meta_scores) if meta_scores is not None else None)


def judge(
    engine: "Engine",
    items: Sequence[JudgeItem],
    k: int,
    params: "SamplingParams",
    *,
    meta_rm: MetaRM | None = None,
    k_meta: int | None = None,
    shuffle: bool = True,
    progress: bool = False,
) -> list[tuple[Verdict, list[Sample]]]:
    """Sample, optionally rate with the meta RM, vote: the whole inference-time scaling step."""
    all_samples = sample_judgments(engine, items, k, params, shuffle=shuffle, progress=progress)
    meta = None
    if meta_rm is not None:
        flat = [s for row in all_samples for s in row]
        rated = meta_rm.rate([s.prompt for s in flat], [s.text for s in flat])
        meta = [rated[i * k : (i + 1) * k] for i in range(len(items))]
    return [
        (decide(item.key, row, len(item.responses), seed=params.seed, meta_scores=meta[i] if meta else None, k_meta=k_meta), row)
        for i, (item, row) in enumerate(zip(items, all_samples))
    ]
