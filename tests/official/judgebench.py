"""ScalerLab/JudgeBench's scoring, transcribed (the repository has no licence file, so nothing is copied).

Source: https://github.com/ScalerLab/JudgeBench at commit e2c52c284e735e139b3daa61c206ee208f36c461
(2024-11-06, the newest stored snapshot; utils/metrics.py and run_judge.py last changed in e9f6755).

Input format, as run_judge.py writes it (``judge_pairs``, lines 20-44): a pair is a dict with
``label`` ("A>B" or "B>A", in terms of response_A / response_B), ``source`` and ``judgments``: one
judgment (``--single_game``) or two, the second judged with the responses swapped
(run_judge.py line 36: ``judge.get_judgment(question, response_B, response_A)``), so its decision
is in swapped terms. A judgment is None when the judge raised (lines 29-31, 37-39), else a dict
whose ``decision`` is "A>B", "B>A", "A=B" (a tie, e.g. utils/judges.py lines 200-204) or None
(nothing parsed, e.g. judges.py line 60).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def flip_judgment(decision: str | None) -> str | None:
    # utils/metrics.py flip_judgment, lines 6-11: swap A>B and B>A; anything else ("A=B", None) unchanged.
    if decision == "A>B":
        return "B>A"
    if decision == "B>A":
        return "A>B"
    return decision


def compute_final_metrics(pairs: list[dict[str, Any]], reverse_order: bool, include_fn: Callable[[dict], bool] = lambda x: x) -> float:
    """utils/metrics.py compute_final_metrics, lines 14-78: the percentage of correct pairs."""
    pairs = [pair for pair in pairs if include_fn(pair)]  # line 16
    n_pairs = len(pairs)  # line 18
    if not reverse_order:  # lines 20-26: single game, right iff the one decision equals the label
        n_correct = sum(pair["judgments"][0]["decision"] == pair["label"] for pair in pairs)
        return 100 * n_correct / n_pairs
    n_correct = 0
    for pair in pairs:  # lines 41-76
        label = pair["label"]  # line 43
        judgment1, judgment2 = pair["judgments"]  # line 44: exactly two
        decision1 = judgment1["decision"] if judgment1 is not None else None  # line 46
        decision2 = flip_judgment(judgment2["decision"] if judgment2 is not None else None)  # line 47
        counter = 0  # lines 64-69: +1 for the label, -1 for its flip, 0 otherwise (tie, None)
        for decision in (decision1, decision2):
            if decision == label:
                counter += 1
            elif decision == flip_judgment(label):
                counter -= 1
        if counter > 0:  # lines 71-72
            n_correct += 1
    return 100 * n_correct / n_pairs  # line 78


def inconsistency(pairs: list[dict[str, Any]]) -> float:
    """compute_final_metrics's ``n_inconsistent / n_pairs`` (lines 39, 60-61; computed there but not
    returned): a pair counts when ``decision1 != decision2`` after the flip, so a missing decision
    (None) differs from a tie ("A=B")."""
    n = 0
    for pair in pairs:
        judgment1, judgment2 = pair["judgments"]
        decision1 = judgment1["decision"] if judgment1 is not None else None
        decision2 = flip_judgment(judgment2["decision"] if judgment2 is not None else None)
        n += decision1 != decision2
    return n / len(pairs)


# run_judge.py lines 94-96: the reported breakdown, by source prefix ("" = Overall).
SOURCES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench", "")


def report(pairs: list[dict[str, Any]], reverse_order: bool = True) -> dict[str, float]:
    """run_judge.py main(), lines 94-96: compute_final_metrics per source prefix, as fractions."""
    out = {}
    for source in SOURCES:
        chosen = [p for p in pairs if p["source"].startswith(source)]
        if chosen:  # upstream divides by zero on a prefix with no pairs
            out[source or "Overall"] = compute_final_metrics(pairs, reverse_order, include_fn=lambda x, s=source: x["source"].startswith(s)) / 100
    return out
