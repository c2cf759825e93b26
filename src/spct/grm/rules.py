"""Shuffling, correctness, tie-breaking and voting: the paper's rules as pure functions.

Training and evaluation differ on ties on purpose: a training trajectory that
ties the true best with another response is *wrong* (strict rule), while
evaluation breaks ties at random with a seeded generator, as the paper does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spct.types import Example

Scores = Sequence[int]


def sample_rng(seed: int, key: str, j: int) -> random.Random:
    """A generator for sample ``j`` of item ``key``: the same on every machine and run."""
    return random.Random(f"{seed}:{key}:{j}")


def permutation(n: int, rng: random.Random) -> list[int]:
    """``perm[p]`` is the original index of the response shown at position ``p``."""
    perm = list(range(n))
    rng.shuffle(perm)
    return perm


def to_original(presented: Scores, perm: Sequence[int]) -> list[int]:
    """Map scores given in presented order back to the original order.

    >>> to_original([9, 2, 5], [2, 0, 1])
    [2, 5, 9]
    """
    if len(presented) != len(perm):
        raise ValueError(f"{len(presented)} scores for a permutation of {len(perm)}")
    out = [0] * len(perm)
    for p, s in zip(perm, presented):
        out[p] = s
    return out


def is_strictly_right(scores: Scores | None, best: int) -> bool:
    """Training rule: the true best has the unique maximum. A tie or no parse is wrong.

    >>> is_strictly_right([8, 8], 0), is_strictly_right([9, 8], 0), is_strictly_right(None, 0)
    (False, True, False)
    """
    if scores is None:
        return False
    top = scores[best]
    return all(s < top for i, s in enumerate(scores) if i != best)


def is_right_for_labels(scores: Scores | None, labels: Sequence[float], tolerance: float = 1.0) -> bool:
    """Rule for per-response labels (e.g. single-response ratings on the 1-10 scale).

    Right when every pair the labels order strictly is ordered the same way by
    the scores and, for a single response, the score is within ``tolerance``.
    """
    if scores is None:
        return False
    if len(labels) == 1:
        return abs(scores[0] - labels[0]) <= tolerance
    for i in range(len(labels)):
        for k in range(len(labels)):
            if labels[i] > labels[k] and not scores[i] > scores[k]:
                return False
    return True


def is_right(ex: "Example", scores: Scores | None) -> bool:
    """The training rule for an item: ``best`` strictly on top, or (label-only data) the label order kept."""
    if ex.best is not None:
        return is_strictly_right(scores, ex.best)
    assert ex.labels is not None  # an Example always has one or the other
    return is_right_for_labels(scores, ex.labels)


def tied_best(scores: Scores) -> list[int]:
    top = max(scores)
    return [i for i, s in enumerate(scores) if s == top]


def pick_best(scores: Scores, rng: random.Random) -> int:
    """Evaluation rule: the highest score, ties broken at random by ``rng``."""
    return rng.choice(tied_best(scores))


@dataclass(frozen=True)
class Vote:
    totals: list[int]  # per response, original order
    used: int  # samples that parsed and were counted
    failed: int  # samples that did not parse and contributed nothing


def vote(samples: Sequence[Scores | None], n: int) -> Vote:
    """Voting@k: sum each response's scores over the samples (already in original order).

    >>> vote([[7, 3], None, [6, 6]], 2)
    Vote(totals=[13, 9], used=2, failed=1)
    """
    totals = [0] * n
    used = failed = 0
    for s in samples:
        if s is None:
            failed += 1
            continue
        if len(s) != n:
            raise ValueError(f"a sample has {len(s)} scores for {n} responses")
        totals = [t + v for t, v in zip(totals, s)]
        used += 1
    return Vote(totals, used, failed)


def meta_keep(meta_scores: Sequence[float], k_meta: int) -> list[int]:
    """Indices of the ``k_meta`` samples the meta RM rates highest (stable on ties)."""
    if k_meta < 1:
        raise ValueError("k_meta must be at least 1")
    order = sorted(range(len(meta_scores)), key=lambda i: (-meta_scores[i], i))
    return sorted(order[:k_meta])


def meta_vote(samples: Sequence[Scores | None], meta_scores: Sequence[float], k_meta: int, n: int) -> Vote:
    """MetaRM@k: vote over the ``k_meta`` samples the meta RM trusts most."""
    if len(samples) != len(meta_scores):
        raise ValueError(f"{len(meta_scores)} meta scores for {len(samples)} samples")
    keep = meta_keep(meta_scores, k_meta)
    return vote([samples[i] for i in keep], n)


def default_k_meta(k: int) -> int:
    """The paper's choice, half of the samples (at least one)."""
    return max(1, k // 2)


class MetaRM(Protocol):
    """A scalar rater of (judge prompt, generated critique) pairs: higher = more trustworthy.

    The training issue supplies the real model; anything with this method plugs
    into evaluation's MetaRM@k and the serving predictor.
    """

    def rate(self, prompts: Sequence[str], critiques: Sequence[str]) -> list[float]: ...
