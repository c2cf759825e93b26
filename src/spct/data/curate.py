"""Curation: normalise, deduplicate, filter, split and balance, then write parquet + manifest.

The output folder holds ``train.parquet``, ``eval.parquet`` (canonical
:class:`Example` records, ``meta`` as a JSON string so the schema never depends
on the sources) and ``manifest.json``. It is built in a temporary folder next to
``out_dir`` and swapped in only when complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import spct
from spct.data.dedup import LSHIndex, MinHasher
from spct.data.errors import DataError, Skipped
from spct.data.load import load
from spct.types import Example, Message

SPLITS = ("train", "eval")


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(None, description="force one format for every source (default: detect per file)")
    skip_bad: bool = Field(False, description="skip malformed records (listed in the manifest) instead of failing")
    limit: int | None = Field(None, ge=1, description="use at most this many examples per source (None = all)")
    eval_fraction: float = Field(0.1, ge=0.0, le=1.0, description="share of prompts (by hash) held out for eval")
    max_tokens: int | None = Field(4096, ge=1, description="drop items whose prompt + responses exceed this (None = keep all)")
    near_dup_threshold: float | None = Field(0.9, gt=0.0, le=1.0, description="MinHash Jaccard to call a near duplicate (None = off)")
    num_perm: int = Field(64, ge=8, description="MinHash permutations")
    lsh_bands: int = Field(8, ge=1, description="LSH bands (num_perm must be a multiple)")
    shingle_size: int = Field(5, ge=1, description="tokens per shingle")
    guard_near_dup_prompts: bool = Field(True, description="keep near-duplicate prompts in the same split")
    balance_positions: bool = Field(True, description="re-order responses so the best position is uniform")
    seed: int = Field(0, description="salts the split hash and the position balancing")

    @model_validator(mode="after")
    def _bands_fit(self) -> "CurateConfig":
        if self.num_perm % self.lsh_bands:
            raise ValueError(f"num_perm={self.num_perm} must be a multiple of lsh_bands={self.lsh_bands}")
        return self


class Manifest(BaseModel):
    spct_version: str
    out_dir: str
    config: dict[str, Any]
    sources: list[dict[str, Any]]
    counts: dict[str, dict[str, Any]]
    drops: dict[str, int]
    skipped: dict[str, Any]
    files: dict[str, dict[str, Any]]


# ---- normalisation -------------------------------------------------------------


def normalize_text(s: str) -> str:
    """NFC, ``\\n`` newlines, no trailing spaces on any line, no outer whitespace."""
    s = unicodedata.normalize("NFC", s).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in s.split("\n")).strip()


def normalize_example(ex: Example) -> Example:
    return ex.model_copy(
        update={
            "messages": [Message(role=m.role, content=normalize_text(m.content)) for m in ex.messages],
            "responses": [normalize_text(r) for r in ex.responses],
        }
    )


def prompt_key(ex: Example) -> str:
    return hashlib.sha256(ex.prompt_text.encode()).hexdigest()


def _group(ex: Example) -> str:
    # Examples built from one upstream item (RM-Bench's 3x3 styles, JudgeBench's two
    # orders) are deliberate variants, never duplicates of each other.
    return str(ex.meta.get("group", ex.id))


# ---- token length --------------------------------------------------------------


def token_counter(tokenizer: Any = None) -> Callable[[str], int]:
    if tokenizer is not None:
        return lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"])
    # Without a tokenizer: words, or chars/4 for dense text (code, no spaces), whichever is larger.
    return lambda s: max(len(s.split()), math.ceil(len(s) / 4))


# ---- the steps -----------------------------------------------------------------


def dedup_filter(examples: Sequence[Example], config: CurateConfig, count: Callable[[str], int]) -> tuple[list[Example], Counter]:
    """Drop identical-response items, over-long items, exact and near duplicates (first one wins)."""
    drops: Counter = Counter()
    kept: list[Example] = []
    seen: dict[str, str] = {}  # exact key -> group of the first holder
    hasher = MinHasher(config.num_perm, config.shingle_size, config.seed)
    index = LSHIndex(config.num_perm, config.lsh_bands)
    index_group: list[str] = []
    for ex in examples:
        if len(set(ex.responses)) < len(ex.responses):
            drops["identical_responses"] += 1
            continue
        if config.max_tokens is not None:
            total = count(ex.prompt_text) + sum(count(r) for r in ex.responses)
            if total > config.max_tokens:
                drops["too_long"] += 1
                continue
        group = _group(ex)
        key = hashlib.sha256("\x00".join([ex.prompt_text, *sorted(ex.responses)]).encode()).hexdigest()
        if key in seen and seen[key] != group:
            drops["exact_duplicate"] += 1
            continue
        seen.setdefault(key, group)
        if config.near_dup_threshold is not None:
            sig = hasher.signature([ex.prompt_text, *ex.responses])
            if sig is not None:
                if any(index_group[i] != group for i in index.query(sig, config.near_dup_threshold)):
                    drops["near_duplicate"] += 1
                    continue
                index.add(sig)
                index_group.append(group)
        kept.append(ex)
    return kept, drops


def assign_splits(examples: Sequence[Example], config: CurateConfig) -> dict[str, list[Example]]:
    """Split by prompt hash; near-duplicate prompts (optionally) share the split of their cluster."""
    keys = [prompt_key(ex) for ex in examples]
    unique = sorted(set(keys))
    rep = {k: k for k in unique}
    if config.guard_near_dup_prompts and config.near_dup_threshold is not None:
        text_of = {k: ex.prompt_text for k, ex in zip(keys, examples)}
        hasher = MinHasher(config.num_perm, config.shingle_size, config.seed)
        index = LSHIndex(config.num_perm, config.lsh_bands)
        owner: list[str] = []

        def find(k: str) -> str:
            while rep[k] != k:
                rep[k] = rep[rep[k]]
                k = rep[k]
            return k

        for k in unique:
            sig = hasher.signature([text_of[k]])
            if sig is None:
                continue
            for i in index.query(sig, config.near_dup_threshold):
                a, b = find(k), find(owner[i])
                if a != b:
                    rep[max(a, b)] = min(a, b)
            index.add(sig)
            owner.append(k)
        for k in unique:
            rep[k] = find(k)
    out: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for k, ex in zip(keys, examples):
        u = int(hashlib.sha256(f"{config.seed}:{rep[k]}".encode()).hexdigest()[:16], 16) / 2**64
        out["eval" if u < config.eval_fraction else "train"].append(ex)
    leaked = {prompt_key(e) for e in out["train"]} & {prompt_key(e) for e in out["eval"]}
    if leaked:  # cannot happen by construction; a guard against future edits
        raise AssertionError(f"{len(leaked)} prompts are in both train and eval")
    return out


def move_best(ex: Example, target: int) -> Example:
    """Swap the best response into position ``target``; labels, ranking and per-response meta follow."""
    if ex.best is None or ex.best == target:
        return ex
    perm = list(range(ex.n))  # perm[new position] = old position
    perm[target], perm[ex.best] = ex.best, target
    inverse = {old: new for new, old in enumerate(perm)}
    meta = dict(ex.meta)
    if isinstance(meta.get("response_meta"), list) and len(meta["response_meta"]) == ex.n:
        meta["response_meta"] = [meta["response_meta"][k] for k in perm]
    # Where each response sat before balancing (JudgeBench's 'order' refers to that one).
    meta["source_positions"] = [meta["source_positions"][k] for k in perm] if "source_positions" in meta else perm
    return ex.model_copy(
        update={
            "responses": [ex.responses[k] for k in perm],
            "best": target,
            "ranking": [inverse[k] for k in ex.ranking] if ex.ranking is not None else None,
            "labels": [ex.labels[k] for k in perm] if ex.labels is not None else None,
            "meta": meta,
        }
    )


def balance_positions(examples: Sequence[Example], seed: int = 0) -> list[Example]:
    """Give the best response each position equally often (per response count), deterministically."""
    order = sorted(range(len(examples)), key=lambda i: hashlib.sha256(f"{seed}:{examples[i].id}".encode()).digest())
    seen: Counter = Counter()
    out = list(examples)
    for i in order:
        ex = examples[i]
        if ex.best is None:
            continue
        out[i] = move_best(ex, seen[ex.n] % ex.n)
        seen[ex.n] += 1
    return out


# ---- writing -------------------------------------------------------------------


def _schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("category", pa.string()),
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("responses", pa.list_(pa.string())),
            ("best", pa.int64()),
            ("ranking", pa.list_(pa.int64())),
            ("labels", pa.list_(pa.float64())),
            ("meta", pa.string()),
        ]
    )


def to_row(ex: Example) -> dict[str, Any]:
    rec = ex.to_record()
    rec["meta"] = json.dumps(rec["meta"], ensure_ascii=False, sort_keys=True)
    return rec


def _write_parquet(examples: Sequence[Example], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([to_row(e) for e in examples], schema=_schema())
    pq.write_table(table, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_counts(examples: Sequence[Example]) -> dict[str, Any]:
    return {
        "total": len(examples),
        "by_source": dict(sorted(Counter(e.source for e in examples).items())),
        "by_category": dict(sorted(Counter(f"{e.source}/{e.category}" for e in examples).items())),
        "best_position": {str(k): v for k, v in sorted(Counter(e.best for e in examples if e.best is not None).items())},
    }


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp``; the old output is removed only after the new one is in place."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def curate(
    sources: Sequence[str | Path], out_dir: str | Path, config: CurateConfig | None = None, tokenizer: Any = None
) -> Manifest:
    """Load ``sources``, curate them and write ``out_dir`` (atomically). Returns the manifest."""
    config = config or CurateConfig()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "manifest.json").exists())):
        raise DataError("exists and is not a curated output folder (no manifest.json); refusing to replace it", path=out_dir)
    if not sources:
        raise DataError("no sources given")

    skipped = Skipped()
    loaded: list[Example] = []
    source_info = []
    for src in sources:
        res = load(src, format=config.format, skip_bad=config.skip_bad)
        used = res.examples[: config.limit] if config.limit else res.examples
        skipped.extend(res.skipped)
        source_info.append({"path": str(src), "loaded": len(res.examples), "used": len(used), "skipped": res.skipped.count})
        loaded.extend(used)

    examples = [normalize_example(e) for e in loaded]
    kept, drops = dedup_filter(examples, config, token_counter(tokenizer))
    splits = assign_splits(kept, config)
    if config.balance_positions:
        splits = {name: balance_positions(exs, config.seed) for name, exs in splits.items()}

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        for name, exs in splits.items():
            path = tmp / f"{name}.parquet"
            _write_parquet(exs, path)
            files[path.name] = {"sha256": _sha256(path), "rows": len(exs), "bytes": path.stat().st_size}
        manifest = Manifest(
            spct_version=spct.__version__,
            out_dir=str(out_dir),
            config=config.model_dump(mode="json"),
            sources=source_info,
            counts={name: _split_counts(exs) for name, exs in splits.items()},
            drops={k: drops.get(k, 0) for k in ("identical_responses", "too_long", "exact_duplicate", "near_duplicate")},
            skipped=skipped.to_dict(),
            files=files,
        )
        (tmp / "manifest.json").write_text(manifest.model_dump_json(indent=2) + "\n")
        _swap_in(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def read_curated(path: str | Path, split: str = "train") -> list[Example]:
    """Examples of a curated parquet file, or of ``split`` in a curated output folder."""
    p = Path(path)
    if p.is_dir():
        if split not in SPLITS:
            raise DataError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})", path=p)
        p = p / f"{split}.parquet"
    if not p.is_file():
        raise DataError("no such curated parquet file", path=p)
    from spct.data.preference import load_spct

    return load_spct(p).examples
