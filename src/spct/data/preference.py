"""Generic preference data (TRL's format) and spct's own canonical records.

TRL preference records carry ``chosen`` and ``rejected`` plus either an explicit
``prompt`` (a string or a list of messages), a ``messages`` list, or, in TRL's
"implicit prompt" form, two whole conversations whose shared turns are the prompt.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, is_hf_dir, place, read_records, require
from spct.types import Example, Message

SOURCE = "preference"


def _content(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    # Multimodal-style content: a list of {"type": "text", "text": ...} parts.
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return "".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    raise DataError(f"expected string content, got {type(value).__name__}", field=field)


def messages_of(value: Any, field: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise DataError("expected a non-empty list of {role, content} messages", field=field)
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError("expected an object with 'role' and 'content'", field=f"{field}[{i}]")
        if m["role"] not in ("system", "user", "assistant"):
            raise DataError(f"unknown role {m['role']!r}", field=f"{field}[{i}].role")
        out.append(Message(role=m["role"], content=_content(m["content"], f"{field}[{i}].content")))
    return out


def _completion(value: Any, field: str) -> str:
    """A chosen/rejected completion: a string, or assistant message(s) joined."""
    if isinstance(value, str):
        reply = value
    elif isinstance(value, list):
        msgs = messages_of(value, field)
        if any(m.role != "assistant" for m in msgs):
            raise DataError("completion messages must all be assistant turns", field=field)
        reply = "\n\n".join(m.content for m in msgs)
    else:
        raise DataError(f"expected a string or a list of messages, got {type(value).__name__}", field=field)
    return reply  # may be empty: an empty answer is an item to judge, not a broken record


def _implicit(chosen: Any, rejected: Any) -> tuple[list[Message], str, str]:
    c = messages_of(chosen, "chosen")
    r = messages_of(rejected, "rejected")
    k = 0
    while k < min(len(c), len(r)) and c[k] == r[k]:
        k += 1
    while k > 0 and c[k - 1].role != "user":  # the prompt ends at the last shared user turn
        k -= 1
    if k == 0:
        raise DataError("no 'prompt' and chosen/rejected share no conversation ending with a user turn", field="prompt")
    tail = lambda ms, f: _completion([m.model_dump() for m in ms[k:]], f)  # noqa: E731
    return c[:k], tail(c, "chosen"), tail(r, "rejected")


def _pair(raw: Raw) -> list[Example]:
    rec = raw.value
    chosen = require(rec, "chosen")
    rejected = require(rec, "rejected")
    if "prompt" in rec and rec["prompt"] is not None:
        p = rec["prompt"]
        if isinstance(p, str):
            if not p.strip():
                raise DataError("is empty", field="prompt")
            messages = [Message(role="user", content=p)]
        else:
            messages = messages_of(p, "prompt")
        good, bad = _completion(chosen, "chosen"), _completion(rejected, "rejected")
    elif "messages" in rec and rec["messages"] is not None:
        messages = messages_of(rec["messages"], "messages")
        good, bad = _completion(chosen, "chosen"), _completion(rejected, "rejected")
    elif isinstance(chosen, list) and isinstance(rejected, list):
        messages, good, bad = _implicit(chosen, rejected)
    else:
        raise DataError("is missing (and chosen/rejected are not whole conversations)", field="prompt")
    if messages[-1].role != "user":
        raise DataError("the prompt must end with a user turn", field="prompt" if "prompt" in rec else "messages")
    # raw.path is "folder[split]" for a DatasetDict: keep the split so ids stay unique.
    base, _, split = raw.path.partition("[")
    stem = Path(base).name.split(".")[0] + (f"/{split.rstrip(']')}" if split else "")
    ex_id = str(rec.get("id") or f"{stem}/{raw.index}")
    responses, best, _ = place(good, [bad], ex_id)
    category = rec.get("category") if isinstance(rec.get("category"), str) and rec.get("category") else "default"
    return [
        Example(
            id=ex_id, source=SOURCE, category=category, messages=messages, responses=responses,
            best=best, ranking=[best, 1 - best], meta={"file": Path(raw.path).name, "index": raw.index},
        )
    ]


def _canonical(raw: Raw) -> list[Example]:
    rec = dict(raw.value)
    meta = rec.get("meta")
    if isinstance(meta, str):
        try:
            rec["meta"] = json.loads(meta) if meta else {}
        except json.JSONDecodeError as e:
            raise DataError(f"invalid JSON: {e.msg}", field="meta") from e
    elif meta is None:
        rec["meta"] = {}
    return [Example.model_validate(rec)]


def convert_preference(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pair, sink)


def convert_spct(raws, sink: Sink) -> list[Example]:
    return convert(raws, _canonical, sink)


def _files(path: str | Path) -> list[Path]:
    p = Path(path)
    return [p] if is_hf_dir(p) else data_files(p)


def load_preference(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """TRL preference records from JSONL / JSON / parquet or a ``save_to_disk`` folder."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in _files(path):
        out.extend(convert_preference(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)


def load_spct(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """spct's canonical :class:`Example` records (curated parquet, or JSON/JSONL dumps)."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in _files(path):
        out.extend(convert_spct(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
