"""RewardBench (allenai/reward-bench) and RewardBench 2 (allenai/reward-bench-2).

RewardBench, the ``filtered`` split: one record per pair with ``prompt``,
``chosen``, ``rejected`` (strings), ``chosen_model``, ``rejected_model``,
``subset`` and ``id``. The subset decides the section (Chat, Chat Hard, Safety,
Reasoning: rewardbench/constants.py SUBSET_MAPPING) and becomes the category.

RewardBench 2, the ``test`` split: ``id``, ``prompt``, ``chosen`` (a list),
``rejected`` (a list), ``num_correct``, ``subset`` (Factuality, Precise IF,
Math, Safety, Focus, Ties) and more. Every subset but Ties is best-of-4: one
chosen, three rejected, judged together. A Ties record is one prompt of kind
``ref`` (one correct answer) or ``tied`` (several), its id ``ref:12`` /
``tied:12`` (rewardbench/utils.py ``process_single_model`` splits it on ':'),
its first ``num_correct`` responses correct; the ref and tied records of one
prompt share a scoring unit, since the Ties formula compares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, is_hf_dir, place, read_records, require, text, text_list
from spct.types import Example, user

SOURCE = "rewardbench"
SOURCE_V2 = "rewardbench-2"

# allenai/reward-bench rewardbench/constants.py (EXAMPLE_COUNTS, SUBSET_MAPPING).
REWARDBENCH_COUNTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95,
    "mt-bench-easy": 28, "mt-bench-med": 40, "mt-bench-hard": 37,
    "math-prm": 984,  # upweighted there to equal code's 6 x 164
    "refusals-dangerous": 100, "refusals-offensive": 100,
    "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "xstest-should-refuse": 154, "xstest-should-respond": 250, "donotanswer": 136,
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}  # fmt: skip
REWARDBENCH_SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond", "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}  # fmt: skip


def _section(subset: str) -> str | None:
    return next((s for s, subsets in REWARDBENCH_SECTIONS.items() if subset in subsets), None)


def _record_id(rec: dict[str, Any]) -> str:
    v = require(rec, "id")
    if isinstance(v, bool) or not isinstance(v, (int, str)) or (isinstance(v, str) and not v.strip()):
        raise DataError(f"expected an integer or a non-empty string, got {v!r}", field="id")
    return str(v)


def _pair(raw: Raw) -> list[Example]:
    rec = raw.value
    prompt = text(rec, "prompt")
    chosen = text(rec, "chosen", allow_empty=True)
    rejected = text(rec, "rejected", allow_empty=True)
    subset = text(rec, "subset")
    rid = _record_id(rec)
    ex_id = f"{SOURCE}/{rid}"
    responses, best, _ = place(chosen, [rejected], ex_id)
    return [
        Example(
            id=ex_id, source=SOURCE, category=subset, messages=[user(prompt)], responses=responses,
            best=best, ranking=[best, 1 - best],
            meta={
                "group": ex_id,
                "subset": subset,
                "section": _section(subset),
                "chosen_model": rec.get("chosen_model"),
                "rejected_model": rec.get("rejected_model"),
            },
        )
    ]


def _ties_id(rid: str) -> tuple[str, int]:
    """(kind, prompt id) from ``ref:12`` / ``tied:12``, as ``process_single_model`` reads it."""
    kind, sep, num = rid.partition(":")
    if not sep or kind not in ("ref", "tied") or not num.strip().lstrip("-").isdigit():
        raise DataError(f"a Ties id must look like 'ref:12' or 'tied:12', got {rid!r}", field="id")
    return kind, int(num)


def _best_of_n(raw: Raw) -> list[Example]:
    rec = raw.value
    prompt = text(rec, "prompt")
    subset = text(rec, "subset")
    rid = _record_id(rec)
    chosen = text_list(rec, "chosen", allow_empty=True)
    rejected = text_list(rec, "rejected", allow_empty=True)
    messages = [user(prompt)]
    base = {"subset": subset, "rb2_id": rid, "models": rec.get("models")}
    if subset.lower() != "ties":
        if len(chosen) != 1:
            # run_generative_v2.py rates chosen + rejected and credits index 0 only.
            raise DataError(f"a best-of-4 record has one chosen response, got {len(chosen)}", field="chosen")
        ex_id = f"{SOURCE_V2}/{rid}"
        responses, best, _ = place(chosen[0], rejected, ex_id)
        return [
            Example(
                id=ex_id, source=SOURCE_V2, category=subset, messages=messages, responses=responses, best=best,
                meta={**base, "group": ex_id, "num_correct": 1},
            )
        ]
    kind, prompt_id = _ties_id(rid)
    n_correct = require(rec, "num_correct")
    if isinstance(n_correct, bool) or not isinstance(n_correct, int) or n_correct != len(chosen):
        raise DataError(f"expected the number of chosen responses ({len(chosen)}), got {n_correct!r}", field="num_correct")
    if not chosen or not rejected:
        raise DataError("the Ties formula needs at least one correct (chosen) and one incorrect (rejected) response", field="chosen" if not chosen else "rejected")
    if kind == "tied" and len(chosen) < 2:
        raise DataError("a 'tied' prompt needs at least two correct (chosen) responses", field="chosen")
    # File order, correct answers first: process_single_model marks score i correct iff i < num_correct.
    responses = [*chosen, *rejected]
    return [
        Example(
            id=f"{SOURCE_V2}/ties/{rid}", source=SOURCE_V2, category=subset, messages=messages, responses=responses,
            labels=[1.0 if i < n_correct else 0.0 for i in range(len(responses))],
            meta={**base, "group": f"{SOURCE_V2}/ties/{prompt_id}", "ties_kind": kind, "ties_prompt": prompt_id, "num_correct": n_correct},
        )
    ]


def convert_rewardbench(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pair, sink)


def convert_rewardbench2(raws, sink: Sink) -> list[Example]:
    return convert(raws, _best_of_n, sink)


def _files(path: str | Path) -> list[Path]:
    p = Path(path)
    return [p] if is_hf_dir(p) else data_files(p)


def load_rewardbench(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """RewardBench pairs (the HF ``filtered`` split as JSON/JSONL/parquet or a ``save_to_disk`` folder)."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in _files(path):
        out.extend(convert_rewardbench(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)


def load_rewardbench2(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """RewardBench 2 records (the HF ``test`` split as JSON/JSONL/parquet or a ``save_to_disk`` folder)."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in _files(path):
        out.extend(convert_rewardbench2(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
