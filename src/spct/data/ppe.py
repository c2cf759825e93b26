"""PPE, Preference Proxy Evaluations (lmarena/PPE; datasets lmarena-ai/PPE-*).

Human preference (``PPE-Human-Preference-V1``): ``question_id``, ``prompt``,
``response_1``, ``response_2``, ``winner`` (which response the Chatbot Arena
voter preferred). One two-response example per record, in file order (Arena
already randomised which model sits first; the harness judges both orders).

Correctness (``PPE-{MMLU-Pro,MATH,GPQA,IFEval,MBPP-Plus}-Best-of-K``):
``question_id``, ``prompt``, ``response_1`` .. ``response_K`` and ``scores``,
one boolean per response (is it correct). One K-response example per record
with ``labels`` = the correctness; the benchmark (the category) comes from a
``benchmark`` field or else from the file path (the datasets carry no such
column).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from spct.data.errors import DataError
from spct.data.preference import messages_of
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, is_hf_dir, read_records, require, text
from spct.types import Example, Message, user

SOURCE_PREFERENCE = "ppe-preference"
SOURCE_CORRECTNESS = "ppe-correctness"
CORRECTNESS_BENCHMARKS = ("mmlu-pro", "mbpp-plus", "gpqa", "ifeval", "math")
_WINNERS = {"model_a": 0, "response_1": 0, "a": 0, "1": 0, "model_b": 1, "response_2": 1, "b": 1, "2": 1}
_RESPONSE_KEY = re.compile(r"^response_(\d+)$")


def _prompt(rec: dict[str, Any]) -> list[Message]:
    p = require(rec, "prompt")
    if isinstance(p, str):
        if not p.strip():
            raise DataError("is empty", field="prompt")
        return [user(p)]
    msgs = messages_of(p, "prompt")
    if msgs[-1].role != "user":
        raise DataError("the prompt must end with a user turn", field="prompt")
    return msgs


def _record_id(rec: dict[str, Any], raw: Raw) -> str:
    v = rec.get("question_id", rec.get("id"))
    return str(v) if v not in (None, "") else f"{Path(raw.path.partition('[')[0]).name.split('.')[0]}/{raw.index}"


def _preference(raw: Raw) -> list[Example]:
    rec = raw.value
    messages = _prompt(rec)
    a = text(rec, "response_1", allow_empty=True)
    b = text(rec, "response_2", allow_empty=True)
    winner = require(rec, "winner")
    key = str(winner).strip().lower()
    if key not in _WINNERS:
        if "tie" in key:
            raise DataError(f"a tie ({winner!r}) states no preference, so PPE's preference accuracy has no right answer for it", field="winner")
        raise DataError(f"expected model_a/model_b (or response_1/response_2), got {winner!r}", field="winner")
    best = _WINNERS[key]
    qid = _record_id(rec, raw)
    category = next((str(rec[k]) for k in ("category", "language") if isinstance(rec.get(k), str) and rec[k]), "default")
    return [
        Example(
            id=f"{SOURCE_PREFERENCE}/{qid}", source=SOURCE_PREFERENCE, category=category, messages=messages,
            responses=[a, b], best=best, ranking=[best, 1 - best],
            meta={"group": f"{SOURCE_PREFERENCE}/{qid}", "winner": winner, "models": [rec.get("model_a"), rec.get("model_b")]},
        )
    ]


def benchmark_of_path(path: str) -> str | None:
    """The PPE correctness benchmark a file path names (``.../PPE-GPQA-Best-of-K/...`` -> gpqa)."""
    low = path.lower().replace("_", "-")
    return next((b for b in CORRECTNESS_BENCHMARKS if b in low), None)


def _correctness(raw: Raw) -> list[Example]:
    rec = raw.value
    messages = _prompt(rec)
    numbered = sorted(int(m.group(1)) for k in rec if (m := _RESPONSE_KEY.match(k)))
    if numbered != list(range(1, len(numbered) + 1)) or len(numbered) < 2:
        raise DataError(f"expected response_1 .. response_K (K >= 2), found {['response_%d' % i for i in numbered]}", field="response_1")
    responses = [text(rec, f"response_{i}", allow_empty=True) for i in numbered]
    scores = require(rec, "scores")
    if not isinstance(scores, list) or len(scores) != len(responses):
        got = f"a list of {len(scores)}" if isinstance(scores, list) else type(scores).__name__
        raise DataError(f"expected one correctness value per response ({len(responses)}), got {got}", field="scores")
    labels = []
    for i, s in enumerate(scores):
        if s not in (True, False, 0, 1):  # bools (and 0/1 from parquet or pandas)
            raise DataError(f"item {i} is {s!r}, expected true/false", field="scores")
        labels.append(1.0 if s else 0.0)
    bench = rec.get("benchmark") if isinstance(rec.get("benchmark"), str) and rec.get("benchmark") else benchmark_of_path(raw.path)
    if bench is None:
        raise DataError(f"cannot tell the benchmark ({', '.join(CORRECTNESS_BENCHMARKS)}): add a 'benchmark' field or name the file after it", field="benchmark")
    qid = _record_id(rec, raw)
    ex_id = f"{SOURCE_CORRECTNESS}/{bench}/{qid}"
    return [
        Example(
            id=ex_id, source=SOURCE_CORRECTNESS, category=bench, messages=messages, responses=responses, labels=labels,
            meta={"group": ex_id, "benchmark": bench, "model_name": rec.get("model_name")},
        )
    ]


def convert_ppe_preference(raws, sink: Sink) -> list[Example]:
    return convert(raws, _preference, sink)


def convert_ppe_correctness(raws, sink: Sink) -> list[Example]:
    return convert(raws, _correctness, sink)


def _load(path: str | Path, fn, skip_bad: bool) -> LoadResult:
    sink = Sink(skip_bad)
    p = Path(path)
    out: list[Example] = []
    for f in [p] if is_hf_dir(p) else data_files(p):
        out.extend(fn(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)


def load_ppe_preference(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """PPE human-preference pairs from JSON/JSONL/parquet or a ``save_to_disk`` folder."""
    return _load(path, convert_ppe_preference, skip_bad)


def load_ppe_correctness(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """PPE best-of-K correctness records from JSON/JSONL/parquet or a ``save_to_disk`` folder."""
    return _load(path, convert_ppe_correctness, skip_bad)
