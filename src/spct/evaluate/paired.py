"""Paired differences between two result columns judged on the same items.

Two models (or greedy and Voting@k of one model) evaluated on the same held-out items are
not independent samples: an item that is hard for one is mostly hard for the other. Their
two separate 95% intervals overlap long before the difference between them is in doubt, and
the difference's own interval is what a claim like "GRPO beats the cold start" needs. The
bootstrap here draws content groups once per resample and scores both columns on the same
draw, so the interval is of the difference, item for item.

A column keeps, per content group (``spct.evaluate.harness.content_groups``: an item's orders
and every copy of the same content), the sum of its judgments' official credit and their
count (``by_group``). The column's mean-of-judgments accuracy is then the total credit over
the total count, which is the headline of every benchmark scored as a plain mean of judgments
(``generic``: the reasoning-gym and builtin items the study runs on). Benchmarks whose
headline is a mean of section means (RewardBench, RM-Bench, RMB) have no such pairing here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

# benchmarks whose headline is the mean of per-judgment credit (spct.evaluate.scoring)
MEAN_OF_JUDGMENTS = frozenset({"generic", "ppe-preference"})


def group_credit(outcomes: Sequence[Any], groups: Mapping[str, str], credit: Any) -> dict[str, list[float]]:
    """``{group: [credit sum, judgments]}`` of ``outcomes`` (each ``Outcome.unit`` mapped by ``groups``)."""
    out: dict[str, list[float]] = {}
    for o in outcomes:
        cell = out.setdefault(groups.get(o.unit, o.unit), [0.0, 0])
        cell[0] += credit(o)
        cell[1] += 1
    return out


def _mean(cells: Mapping[str, Sequence[float]], drawn: Sequence[str]) -> float:
    total = sum(cells[g][0] for g in drawn)
    n = sum(cells[g][1] for g in drawn)
    return total / n if n else 0.0


def paired_difference(
    a: Mapping[str, Sequence[float]],
    b: Mapping[str, Sequence[float]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy of ``a`` minus accuracy of ``b`` (``by_group`` cells of two columns) with its 95%
    percentile interval, the same groups drawn for both in every resample.

    Only groups both columns judged count; ``groups`` says how many, ``only_a``/``only_b`` how many
    were left out (none when both columns ran on the same items, as they should).

    >>> a = {"x": [1.0, 1], "y": [1.0, 1], "z": [0.0, 1]}
    >>> b = {"x": [0.0, 1], "y": [1.0, 1], "z": [0.0, 1]}
    >>> d = paired_difference(a, b, resamples=200)
    >>> round(d["difference"], 3), d["groups"]
    (0.333, 3)
    """
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("paired_difference: the two columns share no item groups (were they judged on the same items?)")
    diff = _mean(a, common) - _mean(b, common)
    rng = random.Random(f"paired:{seed}")
    stats = sorted(
        _mean(a, drawn) - _mean(b, drawn) for drawn in (rng.choices(common, k=len(common)) for _ in range(resamples))
    )
    ci = [stats[int(0.025 * (len(stats) - 1))], stats[int(round(0.975 * (len(stats) - 1)))]] if stats else None
    return {
        "difference": diff,
        "ci95": ci,
        "groups": len(common),
        "only_a": len(set(a) - set(b)),
        "only_b": len(set(b) - set(a)),
        "resamples": resamples,
        "above_zero": ci is not None and ci[0] > 0,
        "below_zero": ci is not None and ci[1] < 0,
    }
