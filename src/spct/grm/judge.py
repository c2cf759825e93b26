"""Judging: the one path from items to verdicts.

:func:`judge` is the entry point every consumer calls (evaluation, RFT and GRPO
sampling, the serving predictor, the registry's pyfunc, ``spct judge``): each
item brings its own ``k``; the responses are presented in a seeded order per
sample (or in the orders the item names, e.g. every rotation for balanced
greedy evaluation); all samples of all items go to the engine in one batched
call; scores are parsed and mapped back to the original order; an optional meta
RM rates every sample; and :func:`decide` votes. The same item content and seed
give the same shuffles and tie-breaks through every consumer, because the
sample key is derived from the content, not from a caller's id.
"""

from __future__ import annotations

import hashlib
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


def content_key(messages: Sequence[Message], responses: Sequence[str]) -> str:
    """A stable key for an item's content: what seeds its shuffles and tie-breaks."""
    h = hashlib.sha256()
    for m in messages:
        h.update(f"{m.role}\x00{len(m.content)}\x00".encode())
        h.update(m.content.encode("utf-8", "surrogatepass"))
    for r in responses:
        h.update(f"r\x00{len(r)}\x00".encode())
        h.update(r.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class JudgeItem:
    """What the GRM judges, and how many times.

    ``k`` samples, sample ``j`` showing the responses in the seeded order
    ``permutation(n, sample_rng(seed, key, j))``; ``orders`` instead names the
    presented order of each sample (``orders[j][p]`` = original index shown at
    position ``p``), and then ``k = len(orders)``. ``hint`` is the original index
    of the best response (RFT hinted sampling). ``k_meta`` set: the meta RM rates
    the samples and the verdict is MetaRM@k over the ``k_meta`` it rates highest.
    ``key`` defaults to the content key. ``seed`` (default: the sampling call's) seeds this
    item's shuffles and tie-break, so items with different seeds can share one generation call.
    """

    messages: Sequence[Message]
    responses: Sequence[str]
    k: int = 1
    hint: int | None = None
    k_meta: int | None = None
    key: str = ""
    orders: tuple[tuple[int, ...], ...] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        n = len(self.responses)
        if self.orders is not None:
            bad = [o for o in self.orders if sorted(o) != list(range(n))]
            if not self.orders or bad:
                raise ValueError(f"orders must be permutations of 0..{n - 1}, got {list(self.orders)}")
            object.__setattr__(self, "k", len(self.orders))
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.k_meta is not None and self.k_meta < 1:
            raise ValueError("k_meta must be at least 1")
        if not self.key:
            object.__setattr__(self, "key", content_key(self.messages, self.responses))

    @classmethod
    def from_example(cls, ex: Example, k: int = 1, hint: bool = False, k_meta: int | None = None) -> "JudgeItem":
        return cls(ex.messages, ex.responses, k=k, hint=ex.best if hint else None, k_meta=k_meta)

    def order(self, j: int, seed: int) -> list[int]:
        """Sample ``j``'s presented order (``seed``: the call's, unless the item has its own)."""
        if self.orders is not None:
            return list(self.orders[j])
        return permutation(len(self.responses), sample_rng(self.seed if self.seed is not None else seed, self.key, j))


def rotations(n: int) -> tuple[tuple[int, ...], ...]:
    """Every cyclic rotation of ``n`` responses: each response sits once in every slot
    (for a pair: both orders), so a judge that always names one slot scores chance."""
    return tuple(tuple((start + p) % n for p in range(n)) for start in range(n))


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


@dataclass(frozen=True)
class Judged:
    """One item's verdict with every sample it came from (and their meta RM ratings, if rated)."""

    item: JudgeItem
    verdict: Verdict
    samples: list[Sample]
    meta_scores: list[float] | None = None


def sample_judgments(
    engine: "Engine", items: Sequence[JudgeItem], params: "SamplingParams", *, progress: bool = False
) -> list[list[Sample]]:
    """``item.k`` critiques per item, every item's samples generated in one batched call."""
    perms: list[list[int]] = []
    prompts: list[str] = []
    specials = special_strings(engine.tokenizer)
    for item in items:
        for j in range(item.k):
            perm = item.order(j, params.seed)
            hint = perm.index(item.hint) if item.hint is not None else None
            chat = build_chat(item.messages, [item.responses[i] for i in perm], hint, specials)
            perms.append(perm)
            prompts.append(engine.render(chat))
    gens = engine.generate(prompts, params, n=1, progress=progress) if prompts else []

    out: list[list[Sample]] = []
    flat = 0
    for item in items:
        row = []
        for _ in range(item.k):
            g = gens[flat][0]
            result = parse_judgment(g.text, len(item.responses))
            scores = to_original(result.scores, perms[flat]) if isinstance(result, Judgment) else None
            row.append(
                Sample(perms[flat], prompts[flat], g.text, result, scores, g.prompt_tokens, list(g.completion_ids), g.finished)
            )
            flat += 1
        out.append(row)
    return out


def decide(
    key: str,
    samples: Sequence[Sample],
    n: int,
    *,
    seed: int = 0,
    meta_scores: Sequence[float] | None = None,
    k_meta: int | None = None,
) -> Verdict:
    """Vote (optionally meta-guided) and pick the best, ties broken by a seeded generator.

    The tie-break is the paper's protocol and what serving must answer; benchmark
    scoring reads ``tied`` and applies each benchmark's own rule instead.
    """
    kept = list(range(len(samples)))
    if meta_scores is not None:
        kept = meta_keep(meta_scores, min(k_meta or default_k_meta(len(samples)), len(samples)))
    v: Vote = vote([samples[i].scores for i in kept], n)
    best = pick_best(v.totals, sample_rng(seed, key, -1))
    return Verdict(v.totals, best, tied_best(v.totals), v.used, v.failed, kept, list(meta_scores) if meta_scores is not None else None)


def rate(meta_rm: MetaRM, rows: Sequence[Sequence[Sample]]) -> list[list[float]]:
    """The meta RM's rating of every sample, row by row (one batched call)."""
    flat = [s for row in rows for s in row]
    rated = list(meta_rm.rate([s.prompt for s in flat], [s.text for s in flat])) if flat else []
    out, pos = [], 0
    for row in rows:
        out.append(rated[pos : pos + len(row)])
        pos += len(row)
    return out


def judge(
    engine: "Engine",
    items: Sequence[JudgeItem],
    params: "SamplingParams",
    *,
    meta_rm: MetaRM | None = None,
    progress: bool = False,
) -> list[Judged]:
    """Sample every item's ``k`` critiques, rate them with the meta RM where asked, vote.

    An item with ``k_meta`` gets MetaRM@k (its samples rated in one batched call
    with every other such item's); the others get Voting@k. The ratings stay in
    ``Judged.meta_scores``, so a caller can vote again over prefixes (evaluation's
    curves) without sampling again.
    """
    if meta_rm is None and any(it.k_meta is not None for it in items):
        raise ValueError("items ask for MetaRM@k (k_meta) but no meta RM was given")
    rows = sample_judgments(engine, items, params, progress=progress)
    rated_idx = [i for i, it in enumerate(items) if it.k_meta is not None]
    meta: dict[int, list[float]] = {}
    if meta_rm is not None and rated_idx:
        meta = dict(zip(rated_idx, rate(meta_rm, [rows[i] for i in rated_idx])))
    out = []
    for i, (item, row) in enumerate(zip(items, rows)):
        ms = meta.get(i)
        seed = item.seed if item.seed is not None else params.seed
        v = decide(item.key, row, len(item.responses), seed=seed, meta_scores=ms, k_meta=item.k_meta)
        out.append(Judged(item, v, row, ms))
    return out
