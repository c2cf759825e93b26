"""Anthropic HH-RLHF: two whole dialogues (``\\n\\nHuman: ...\\n\\nAssistant: ...``) per line.

The two dialogues share every turn except the last assistant reply. The shared
part becomes the conversation; the two final replies become the responses.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, place, read_records, text
from spct.types import Example, Message

SOURCE = "hh-rlhf"
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
_TURN = re.compile(r"(\n\nHuman:|\n\nAssistant:)")


def split_turns(dialogue: str, field: str = "chosen") -> list[Message]:
    """``\\n\\nHuman: a\\n\\nAssistant: b...`` -> messages (user/assistant)."""
    parts = _TURN.split(dialogue)
    if parts[0].strip() or len(parts) < 3:
        raise DataError("the dialogue does not start with '\\n\\nHuman:'", field=field)
    msgs = []
    for marker, content in zip(parts[1::2], parts[2::2]):
        msgs.append(Message(role="user" if marker == HUMAN else "assistant", content=content.strip()))
    return msgs


def split_pair(chosen: str, rejected: str) -> tuple[list[Message], str, str]:
    """The shared conversation and the two final assistant replies."""
    common = os.path.commonprefix([chosen, rejected])
    cut = common.rfind(ASSISTANT)
    if cut < 0 or not common.startswith(HUMAN):
        raise DataError("chosen and rejected share no dialogue up to a final Assistant turn", field="rejected")
    messages = split_turns(chosen[:cut])
    if messages[-1].role != "user":
        raise DataError("the shared dialogue does not end with a Human turn", field="chosen")
    # A final reply may be empty (the harmless-base test split has 4 such chosen replies: saying
    # nothing was preferred); it is an item to judge, not a broken record.
    replies = [whole[cut + len(ASSISTANT):].strip() for whole in (chosen, rejected)]
    return messages, replies[0], replies[1]


def category_of(file_name: str) -> str:
    name = file_name.lower()
    if "harmless" in name or "red-team" in name:
        return "harmlessness"
    if "helpful" in name:
        return "helpfulness"
    return "dialogue"


def _pair(raw: Raw) -> list[Example]:
    rec = raw.value
    chosen = text(rec, "chosen")
    rejected = text(rec, "rejected")
    messages, good, bad = split_pair(chosen, rejected)
    name = Path(raw.path).name
    stem = name.split(".")[0]
    ex_id = f"{SOURCE}/{stem}/{raw.index}"
    responses, best, _ = place(good, [bad], ex_id)
    return [
        Example(
            id=ex_id, source=SOURCE, category=category_of(name), messages=messages, responses=responses,
            best=best, ranking=[best, 1 - best], meta={"file": name, "line": raw.index},
        )
    ]


def convert_hh_rlhf(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pair, sink)


def load_hh_rlhf(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """HH-RLHF pairs from a ``.jsonl`` / ``.jsonl.gz`` file or a folder of them."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in data_files(path):
        out.extend(convert_hh_rlhf(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
