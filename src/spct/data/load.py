"""One entry point for every source: :func:`load` detects the format or takes it by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spct.data.errors import DataError
from spct.data.hh_rlhf import convert_hh_rlhf
from spct.data.judgebench import convert_judgebench
from spct.data.ppe import convert_ppe_correctness, convert_ppe_preference
from spct.data.preference import convert_preference, convert_spct
from spct.data.reasoning_gym import PREFIX as REASONING_GYM
from spct.data.reasoning_gym import load_spec as reasoning_gym_items
from spct.data.records import LoadResult, Raw, Sink, data_files, is_hf_dir, read_records
from spct.data.rewardbench import REWARDBENCH_COUNTS, convert_rewardbench, convert_rewardbench2
from spct.data.rm_bench import convert_rm_bench
from spct.data.spec import integer, options
from spct.data.rmb import convert_rmb
from spct.data.synthetic import DEFAULT_ITEMS, generate_verifiable
from spct.types import Example

Converter = Callable[[Iterable[Raw], Sink], list[Example]]

# Checked in this order: the specific formats first, generic preference last (RewardBench 2
# before RM-Bench: both carry prompt, id and lists of chosen/rejected; only RB2 has num_correct).
FORMATS: dict[str, Converter] = {
    "rewardbench-2": convert_rewardbench2,
    "rm-bench": convert_rm_bench,
    "judgebench": convert_judgebench,
    "rmb": convert_rmb,
    "rewardbench": convert_rewardbench,
    "ppe-preference": convert_ppe_preference,
    "ppe-correctness": convert_ppe_correctness,
    "hh-rlhf": convert_hh_rlhf,
    "spct": convert_spct,
    "preference": convert_preference,
}
BUILTINS = ("verifiable",)


def _looks_like(fmt: str, rec: dict[str, Any]) -> bool:
    keys = rec.keys()
    if fmt == "rewardbench-2":
        return {"prompt", "chosen", "rejected", "num_correct"} <= keys and isinstance(rec["chosen"], list)
    if fmt == "rewardbench":
        # The HF filtered split: string chosen/rejected plus subset; chosen_model or a known subset name
        # tells it from a generic preference file that happens to have a subset column.
        return (
            {"prompt", "chosen", "rejected", "subset"} <= keys and isinstance(rec["chosen"], str)
            and ("chosen_model" in keys or rec["subset"] in REWARDBENCH_COUNTS)
        )  # fmt: skip
    if fmt == "ppe-preference":
        return {"prompt", "response_1", "response_2", "winner"} <= keys
    if fmt == "ppe-correctness":
        return {"prompt", "response_1", "response_2", "scores"} <= keys and isinstance(rec["scores"], list)
    if fmt == "rm-bench":
        return {"prompt", "chosen", "rejected"} <= keys and isinstance(rec["chosen"], list) and all(isinstance(x, str) for x in rec["chosen"]) and "id" in keys
    if fmt == "judgebench":
        return {"pair_id", "response_A", "response_B", "label"} <= keys
    if fmt == "rmb":
        return "conversation_input" in keys and ("pair_uid" in keys or "bon_uid" in keys)
    if fmt == "hh-rlhf":
        c, r = rec.get("chosen"), rec.get("rejected")
        return "prompt" not in keys and isinstance(c, str) and isinstance(r, str) and c.lstrip(" ").startswith("\n\nHuman:")
    if fmt == "spct":
        return {"id", "source", "messages", "responses"} <= keys
    if fmt == "preference":
        return {"chosen", "rejected"} <= keys
    return False


def detect_format(rec: Any, where: str) -> str:
    """The format name whose record shape ``rec`` has."""
    if isinstance(rec, dict):
        for fmt in FORMATS:
            if _looks_like(fmt, rec):
                return fmt
    keys = sorted(rec)[:12] if isinstance(rec, dict) else type(rec).__name__
    raise DataError(f"unknown format (tried {', '.join(FORMATS)}); the first record has keys {keys}", path=where)


def load_builtin(spec: str) -> LoadResult:
    """``builtin:verifiable`` or ``builtin:verifiable?n=50&seed=3&responses=3&categories=arithmetic,sorting``.

    ``modes=uppercase,acronym`` narrows categories with sub-kinds (see ``synthetic.MODES``).
    """
    name, _, query = spec.removeprefix("builtin:").partition("?")
    if name not in BUILTINS:
        raise DataError(f"unknown builtin dataset {name!r} (available: {', '.join(BUILTINS)})", path=spec)
    try:
        q = options(query, ("n", "seed", "responses", "categories", "modes", "split"))
        examples = generate_verifiable(
            integer(q, "n", DEFAULT_ITEMS),
            seed=integer(q, "seed", 0),
            n_responses=integer(q, "responses", 2),
            categories=q["categories"].split(",") if "categories" in q else None,
            modes=q["modes"].split(",") if "modes" in q else None,
            split=q.get("split", "all"),
        )
    except ValueError as e:
        raise DataError(str(e), path=spec) from e
    return LoadResult(examples)


def load_reasoning_gym(spec: str) -> LoadResult:
    """``reasoning-gym:spell_backward,gcd?n=200&seed=0&split=train&level=0&responses=2``
    (see :mod:`spct.data.reasoning_gym`)."""
    try:
        return LoadResult(reasoning_gym_items(spec))
    except ValueError as e:
        raise DataError(str(e), path=spec) from e


def load(path: str | Path, format: str | None = None, skip_bad: bool = False) -> LoadResult:
    """Load any supported source: a file, a folder (walked recursively), ``builtin:NAME`` or
    ``reasoning-gym:TASKS?...``.

    Without ``format`` each file's format is detected from its first record.
    """
    if str(path).startswith("builtin:"):
        return load_builtin(str(path))
    if str(path).startswith(REASONING_GYM):
        return load_reasoning_gym(str(path))
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})", path=path)
    sink = Sink(skip_bad)
    p = Path(path)
    files = [p] if is_hf_dir(p) else data_files(p)
    out: list[Example] = []
    for f in files:
        raws = read_records(f, sink)
        fmt = format
        if fmt is None:
            first = next(raws, None)
            if first is None:
                continue  # an empty file, or one whose only record was skipped
            fmt = detect_format(first.value, str(f))
            raws = _chain(first, raws)
        out.extend(FORMATS[fmt](raws, sink))
    return LoadResult(out, sink.skipped)


def _chain(first: Raw, rest: Iterable[Raw]) -> Iterable[Raw]:
    yield first
    yield from rest
