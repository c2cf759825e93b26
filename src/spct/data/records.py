"""Reading raw records from JSON / JSONL(.gz) / parquet / HF ``datasets`` folders.

Every raw record carries its location (file, line or index), so converters can
raise :class:`DataError` naming only the field and the location is filled in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from spct.data.errors import DataError, Skipped
from spct.types import Example

DATA_SUFFIXES = (".json", ".jsonl", ".jsonl.gz", ".json.gz", ".parquet")
# Metadata files that sit next to data and are never records.
NOT_DATA = {"manifest.json", "dataset_info.json", "state.json", "dataset_dict.json"}
HF_DIR_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class Raw:
    """One record as read from disk, with where it came from."""

    path: str
    unit: str  # "line" (1-based JSONL), "record" (0-based JSON array index), "row" (parquet)
    index: int
    value: Any


@dataclass
class LoadResult:
    examples: list[Example]
    skipped: Skipped = field(default_factory=Skipped)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __len__(self) -> int:
        return len(self.examples)


class Sink:
    """Raises bad-record errors, or under ``skip_bad`` records and swallows them."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped = Skipped()

    def bad(self, err: DataError) -> None:
        if not self.skip_bad:
            raise err
        self.skipped.add(err)


# ---- locating and reading files ------------------------------------------------


def is_data_file(p: Path) -> bool:
    return p.is_file() and p.name.endswith(DATA_SUFFIXES) and p.name not in NOT_DATA and not p.name.startswith(".")


def is_hf_dir(p: Path) -> bool:
    return p.is_dir() and any((p / m).is_file() for m in HF_DIR_MARKERS)


def data_files(path: str | Path) -> list[Path]:
    """The data files under ``path`` (itself if a file), sorted so loading is deterministic."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or directory", path=p)
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if is_data_file(f) and not any(s.startswith(".") for s in f.relative_to(p).parts))
    if not files:
        raise DataError(f"no data files ({', '.join(DATA_SUFFIXES)}) in this folder", path=p)
    return files


def read_records(path: Path, sink: Sink) -> Iterator[Raw]:
    """Yield the records of one file or HF ``datasets`` folder."""
    name = path.name
    if path.is_dir():
        yield from _read_hf_dir(path)
    elif name.endswith((".jsonl", ".jsonl.gz")):
        yield from _read_jsonl(path, sink)
    elif name.endswith((".json", ".json.gz")):
        yield from _read_json_array(path, sink)
    elif name.endswith(".parquet"):
        yield from _read_parquet(path)
    else:
        raise DataError(f"unsupported file type (expected one of {', '.join(DATA_SUFFIXES)})", path=path)


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_jsonl(path: Path, sink: Sink) -> Iterator[Raw]:
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    sink.bad(DataError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, record=lineno, unit="line"))
                    continue
                yield Raw(str(path), "line", lineno, value)
    except (UnicodeDecodeError, OSError, EOFError) as e:
        # A truncated .gz or binary file: nothing after this point can be read.
        sink.bad(DataError(f"cannot read file: {e}", path=path))


def _read_json_array(path: Path, sink: Sink) -> Iterator[Raw]:
    try:
        with _open_text(path) as f:
            text = f.read()
    except (UnicodeDecodeError, OSError, EOFError) as e:
        sink.bad(DataError(f"cannot read file: {e}", path=path))
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # Walk the array element by element to name the first broken record and
        # keep the good ones before it (for --skip-bad).
        yield from _salvage_array(path, text, sink)
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        sink.bad(DataError(f"expected a JSON array of records, got {type(data).__name__}", path=path))
        return
    for i, value in enumerate(data):
        yield Raw(str(path), "record", i, value)


def _salvage_array(path: Path, text: str, sink: Sink) -> Iterator[Raw]:
    dec = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if not text.startswith("[", pos):
        sink.bad(DataError("invalid JSON: expected a JSON array of records", path=path))
        return
    pos = _skip_ws(text, pos + 1)
    i = 0
    while pos < len(text) and text[pos] != "]":
        try:
            value, pos = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            rest = "the rest of the file is unreadable (truncated?)"
            sink.bad(DataError(f"invalid JSON: {e.msg} (line {e.lineno} column {e.colno}); {rest}", path=path, record=i))
            return
        yield Raw(str(path), "record", i, value)
        i += 1
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
        elif pos >= len(text) or text[pos] != "]":
            sink.bad(DataError("invalid JSON: expected ',' or ']' after the record (truncated?)", path=path, record=i))
            return
    if pos >= len(text):
        sink.bad(DataError("invalid JSON: the array is not closed (truncated?)", path=path, record=i))


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_parquet(path: Path) -> Iterator[Raw]:
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise DataError(f"cannot read parquet: {e}", path=path) from e
    for i, value in enumerate(rows):
        yield Raw(str(path), "row", i, value)


def _read_hf_dir(path: Path) -> Iterator[Raw]:
    from datasets import Dataset, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"cannot load a datasets folder saved with save_to_disk: {e}", path=path) from e
    splits = {"": ds} if isinstance(ds, Dataset) else dict(ds)
    for split, part in splits.items():
        where = f"{path}[{split}]" if split else str(path)
        for i, value in enumerate(part.to_list()):
            yield Raw(where, "row", i, value)


# ---- converting ------------------------------------------------------------------


def convert(raws: Iterable[Raw], fn: Callable[[Raw], list[Example]], sink: Sink) -> list[Example]:
    """Run ``fn`` on each record; errors get the record's location and go to ``sink``."""
    out: list[Example] = []
    for raw in raws:
        try:
            if not isinstance(raw.value, dict):
                raise DataError(f"expected a JSON object, got {type(raw.value).__name__}")
            out.extend(fn(raw))
        except DataError as e:
            sink.bad(DataError(e.reason, path=raw.path, record=raw.index, field=e.field, unit=raw.unit))
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"]) or None
            sink.bad(DataError(err["msg"], path=raw.path, record=raw.index, field=loc, unit=raw.unit))
    return out


def require(rec: dict[str, Any], key: str) -> Any:
    if key not in rec or rec[key] is None:
        raise DataError("is missing", field=key)
    return rec[key]


def text(rec: dict[str, Any], key: str, *, where: str | None = None, allow_empty: bool = False) -> str:
    """A string field, non-empty unless ``allow_empty``.

    Responses pass ``allow_empty``: an empty answer is a legitimate item a judge should rank
    last (the full RMB release has two), not structural damage. Prompts, ids and labels may
    not be empty.
    """
    v = require(rec, key)
    name = where or key
    if not isinstance(v, str):
        raise DataError(f"expected a string, got {type(v).__name__}", field=name)
    if not allow_empty and not v.strip():
        raise DataError("is empty", field=name)
    return v


def text_list(
    rec: dict[str, Any], key: str, n: int | None = None, *, allow_empty: bool = False, min_len: int = 1
) -> list[str]:
    """A list of strings (exactly ``n`` when given, else at least ``min_len``)."""
    v = require(rec, key)
    want = f"a list of {n} strings" if n else ("a list of strings" if min_len <= 1 else f"a list of at least {min_len} strings")
    bad_len = (n is not None and len(v) != n) or (n is None and len(v) < min_len) if isinstance(v, list) else True
    if not isinstance(v, list) or bad_len or not all(isinstance(x, str) for x in v):
        got = f"a list of {len(v)}" if isinstance(v, list) else type(v).__name__
        if isinstance(v, list) and not bad_len:
            bad = next(i for i, x in enumerate(v) if not isinstance(x, str))
            got = f"item {bad} of type {type(v[bad]).__name__}"
        raise DataError(f"expected {want}, got {got}", field=key)
    if not allow_empty:
        for i, x in enumerate(v):
            if not x.strip():
                raise DataError(f"item {i} is empty", field=key)
    return v


def stable_hash(*parts: object) -> int:
    """A process-independent hash (Python's ``hash`` is salted per process)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big")


def place(best: str, others: list[str], key: str) -> tuple[list[str], int, list[int]]:
    """Put ``best`` at a hashed position among ``others``; returns responses, best index, order.

    ``order[k]`` is the input position (0 = best, 1.. = others) of output response ``k``.
    """
    n = len(others) + 1
    pos = stable_hash("position", key) % n
    order = list(range(1, n))
    order.insert(pos, 0)
    items = [best, *others]
    return [items[k] for k in order], pos, order
