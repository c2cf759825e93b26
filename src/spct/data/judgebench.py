"""JudgeBench (ScalerLab/JudgeBench): hard pairs labelled ``A>B`` or ``B>A``.

One example per pair, the responses in file order (A, B). The official protocol
judges both orders (utils/metrics.py ``compute_final_metrics`` with
reverse_order); the evaluation harness supplies them by judging every rotation,
and the scorer joins a pair's judgments by their unit, ``meta['group']`` =
``judgebench/{pair_id}``.
"""

from __future__ import annotations

from pathlib import Path

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, read_records, text
from spct.types import Example, user

SOURCE = "judgebench"
LABELS = ("A>B", "B>A")


def category_of(source: str) -> str:
    """JudgeBench's four categories from the per-pair ``source`` field (run_judge.py's prefixes)."""
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
    a = text(rec, "response_A", allow_empty=True)
    b = text(rec, "response_B", allow_empty=True)
    label = text(rec, "label")
    if label not in LABELS:
        raise DataError(f"expected 'A>B' or 'B>A', got {label!r}", field="label")
    source = text(rec, "source")
    best = 0 if label == "A>B" else 1
    return [
        Example(
            id=f"{SOURCE}/{pair_id}", source=SOURCE, category=category_of(source), messages=[user(question)],
            responses=[a, b], best=best, ranking=[best, 1 - best],
            meta={
                "pair_id": pair_id,
                "group": f"{SOURCE}/{pair_id}",
                "label": label,
                "judgebench_source": source,
                "original_id": rec.get("original_id"),
                "response_model": rec.get("response_model"),
            },
        )
    ]


def convert_judgebench(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pair, sink)


def load_judgebench(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """One example per pair (responses A, B in file order) from a JudgeBench JSONL file or folder."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in data_files(path):
        out.extend(convert_judgebench(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
