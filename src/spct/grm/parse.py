"""Read a judgment out of the text the GRM generated (and only that text)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FailureReason = Literal["no_box", "wrong_count", "out_of_range", "non_integer"]
SCORE_MIN, SCORE_MAX = 1, 10

_BOX = re.compile(r"\\boxed\{([^{}]*)\}")
_INT = re.compile(r"[+-]?\d+")
_CRITERIA = re.compile(r"specific criteria\s*:", re.IGNORECASE)
_ANALYSIS = re.compile(r"analysis\s*:", re.IGNORECASE)
_SCORES = re.compile(r"scores?\s*:", re.IGNORECASE)
_WEIGHT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


@dataclass(frozen=True)
class Principle:
    text: str
    weight: float | None = None


@dataclass(frozen=True)
class Judgment:
    scores: list[int]
    principles: list[Principle] = field(default_factory=list)
    critique: str = ""
    box: str = ""  # the exact boxed text the scores came from

    ok = True


@dataclass(frozen=True)
class ParseFailure:
    reason: FailureReason
    detail: str

    ok = False


def _principles(block: str) -> list[Principle]:
    out = []
    for line in block.splitlines():
        line = line.strip()
        if not line:
            continue
        w = _WEIGHT.search(line)
        out.append(Principle(text=_BULLET.sub("", line), weight=float(w.group(1)) if w else None))
    return out


def parse_judgment(text: str, n: int) -> Judgment | ParseFailure:
    """Parse the final ``\\boxed{...}`` score list for ``n`` responses.

    >>> parse_judgment("Analysis: fine.\\nScores: \\\\boxed{7, 3}", 2).scores
    [7, 3]
    >>> parse_judgment("Scores: \\\\boxed{7}", 2).reason
    'wrong_count'
    """
    boxes = list(_BOX.finditer(text))
    if not boxes:
        return ParseFailure("no_box", "no \\boxed{...} score list in the generated text")
    last = boxes[-1]
    items = [s.strip() for s in last.group(1).split(",")]
    if len(items) != n:
        return ParseFailure("wrong_count", f"expected {n} scores, found {len(items)} in \\boxed{{{last.group(1)}}}")
    scores = []
    for s in items:
        if not _INT.fullmatch(s):
            return ParseFailure("non_integer", f"score {s!r} is not an integer")
        v = int(s)
        if not SCORE_MIN <= v <= SCORE_MAX:
            return ParseFailure("out_of_range", f"score {v} is outside {SCORE_MIN}..{SCORE_MAX}")
        scores.append(v)

    body = text[: last.start()]
    principles: list[Principle] = []
    crit = _CRITERIA.search(body)
    ana = _ANALYSIS.search(body, crit.end() if crit else 0)
    if crit:
        principles = _principles(body[crit.end() : ana.start() if ana else len(body)])
    # Without an Analysis heading, whatever precedes the box (and any criteria) is the critique.
    start = ana.end() if ana else (len(body) if crit else 0)
    critique = body[start:]
    tail = list(_SCORES.finditer(critique))
    if tail:
        critique = critique[: tail[-1].start()]
    return Judgment(scores=scores, principles=principles, critique=critique.strip(), box=last.group(0))
