"""RMB (Zhou-Zoey/RMB-Reward-Model-Benchmark): pairwise and best-of-N items.

``category_path`` looks like ``Pairwise_set/Helpfulness/Chat/Casual Conversation``:
the goal (helpfulness / harmlessness) goes to ``meta['goal']``, the last part (the
scenario) becomes the category, and the full path stays in ``meta``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, place, read_records, require, text
from spct.types import Example, Message

SOURCE = "rmb"


def _conversation(rec: dict[str, Any]) -> list[Message]:
    turns = require(rec, "conversation_input")
    if not isinstance(turns, list) or not turns:
        raise DataError("expected a non-empty list of {role, content} turns", field="conversation_input")
    msgs = []
    for i, t in enumerate(turns):
        where = f"conversation_input[{i}]"
        if not isinstance(t, dict):
            raise DataError("expected an object with role and content", field=where)
        role = t.get("role")
        if role not in ("system", "user", "assistant"):
            raise DataError(f"unknown role {role!r}", field=f"{where}.role")
        content = t.get("content")
        if not isinstance(content, str):
            raise DataError("expected a string", field=f"{where}.content")
        msgs.append(Message(role=role, content=content))
    if msgs[-1].role != "user":
        raise DataError("the conversation must end with a user turn", field="conversation_input")
    return msgs


def _answer(value: Any, field: str) -> tuple[str, str | None]:
    if not isinstance(value, dict):
        raise DataError("expected an object {llm_name, answer}", field=field)
    # An empty answer is an item to judge (the full release has two), not a broken record.
    return text(value, "answer", where=f"{field}.answer", allow_empty=True), value.get("llm_name")


def _category(rec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    path = text(rec, "category_path")
    parts = [p for p in path.split("/") if p]
    goal = next((p.lower() for p in parts if p.lower() in ("helpfulness", "harmlessness")), None)
    meta = {"category_path": path, "goal": goal, "domain": parts[2] if len(parts) > 3 else None}
    return parts[-1], meta


def _item(raw: Raw) -> list[Example]:
    rec = raw.value
    messages = _conversation(rec)
    category, meta = _category(rec)
    if "pair_uid" in rec:
        uid = str(require(rec, "pair_uid"))
        good, good_llm = _answer(require(rec, "chosen"), "chosen")
        bad, bad_llm = _answer(require(rec, "reject"), "reject")
        ex_id = f"{SOURCE}/pair/{uid}"
        responses, best, order = place(good, [bad], ex_id)
        llms = [good_llm, bad_llm]
        kind = "pairwise"
    elif "bon_uid" in rec:
        uid = str(require(rec, "bon_uid"))
        good, good_llm = _answer(require(rec, "bon_best"), "bon_best")
        losers = require(rec, "loser_list")
        if not isinstance(losers, list) or not losers:
            raise DataError("expected a non-empty list of {llm_name, answer}", field="loser_list")
        answers = [_answer(v, f"loser_list[{i}]") for i, v in enumerate(losers)]
        ex_id = f"{SOURCE}/bon/{uid}"
        responses, best, order = place(good, [a for a, _ in answers], ex_id)
        llms = [good_llm, *(n for _, n in answers)]
        kind = "bon"
    else:
        raise DataError("an RMB item needs 'pair_uid' (pairwise) or 'bon_uid' (best-of-N)", field="pair_uid")
    # Only the best is known; losers are unordered, so no full ranking.
    ranking = [best, 1 - best] if kind == "pairwise" else None
    return [
        Example(
            id=ex_id, source=SOURCE, category=category, messages=messages, responses=responses, best=best,
            ranking=ranking,
            meta={**meta, "kind": kind, "uid": uid, "response_meta": [{"llm_name": llms[k]} for k in order]},
        )
    ]


def convert_rmb(raws, sink: Sink) -> list[Example]:
    return convert(raws, _item, sink)


def load_rmb(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """RMB items from one JSON file or a whole ``RMB_dataset/`` folder (walked recursively)."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in data_files(path):
        out.extend(convert_rmb(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
