"""JudgeBench (ScalerLab/JudgeBench): hard pairs labelled ``A>B`` or ``B>A``.

The official protocol judges each pair in both orders, so every pair becomes two
examples, ``{pair_id}:AB`` and ``{pair_id}:BA``; scoring joins them by
``meta['pair_id']``.
"""

from __future__ import annotations

from pathlib import Path

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, read_records, text
from spct.types import Example, user

SOURCE = "judgebench"
LABELS = ("A>B", "B>A")


def category_of(source: str) -> str:
    """JudgeBench's four categories from the per-pair ``source`` field."""
    s = source.lower()
    if s.startswith("mmlu-pro"):
        return "knowledge"
    if "math" in s:
        return "math"
    if "code" in s or "coding" in s:
        return "coding"
    if "reasoning" in s:
        return "reasoning"
    return s


def _pair(raw: Raw) -> list[Example]:
    rec = raw.value
    pair_id = text(rec, "pair_id")
    question = text(rec, "question")
    a = text(rec, "response_A")
    b = text(rec, "response_B")
    label = text(rec, "label")
    if label not in LABELS:
        raise DataError(f"expected 'A>B' or 'B>A', got {label!r}", field="label")
    source = text(rec, "source")
    a_wins = label == "A>B"
    base = {
        "pair_id": pair_id,
        "group": f"{SOURCE}/{pair_id}",
        "label": label,
        "judgebench_source": source,
        "original_id": rec.get("original_id"),
        "response_model": rec.get("response_model"),
    }
    msgs = [user(question)]
    cat = category_of(source)
    return [
        Example(
            id=f"{pair_id}:AB", source=SOURCE, category=cat, messages=msgs, responses=[a, b],
            best=0 if a_wins else 1, ranking=[0, 1] if a_wins else [1, 0], meta={**base, "order": "AB"},
        ),
        Example(
            id=f"{pair_id}:BA", source=SOURCE, category=cat, messages=msgs, responses=[b, a],
            best=1 if a_wins else 0, ranking=[1, 0] if a_wins else [0, 1], meta={**base, "order": "BA"},
        ),
    ]


def convert_judgebench(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pair, sink)


def load_judgebench(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """Both orders of every pair in a JudgeBench JSONL file or folder."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in data_files(path):
        out.extend(convert_judgebench(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
