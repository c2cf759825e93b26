"""RM-Bench (THU-KEG/RM-Bench): 3 chosen x 3 rejected responses per prompt, in three styles.

Every (chosen style i, rejected style j) cell becomes one two-response example so
the benchmark's 3x3 accuracy matrix (hard / normal / easy) can be rebuilt from
``meta['chosen_style']`` and ``meta['rejected_style']``.
"""

from __future__ import annotations

from pathlib import Path

from spct.data.errors import DataError
from spct.data.records import LoadResult, Raw, Sink, convert, data_files, read_records, require, stable_hash, text, text_list
from spct.types import Example, user

SOURCE = "rm-bench"
STYLES = ("concise", "detailed_plain", "detailed_markdown")
DOMAINS = ("chat", "code", "math", "safety")

# Upstream subset names, for files whose name does not say the domain (e.g. total_dataset.json).
_SUBSET_DOMAIN = {
    "alpacaeval": "chat",
    "humanevalpack": "code",
    "hep": "code",
    "math": "math",
    "gsm": "math",
    "xstest": "safety",
    "refusals": "safety",
    "donotanswer": "safety",
}


def domain_of(file_stem: str, subset: str) -> tuple[str, str]:
    """(domain, subset-within-domain) from the file name, falling back to the upstream subset."""
    stem = file_stem.removesuffix("_filtered")
    if stem in DOMAINS:
        return stem, stem
    if stem.startswith("safety-"):
        return "safety", stem
    low = subset.lower()
    for key, domain in _SUBSET_DOMAIN.items():
        if key in low:
            if domain == "safety":
                return domain, "safety-response" if "respond" in low else "safety-refuse"
            return domain, domain
    raise DataError(f"cannot tell the domain (chat, code, math, safety) from file {file_stem!r} or subset {subset!r}", field="subset")


def _pairs(raw: Raw) -> list[Example]:
    rec = raw.value
    prompt = text(rec, "prompt")
    chosen = text_list(rec, "chosen", 3, allow_empty=True)
    rejected = text_list(rec, "rejected", 3, allow_empty=True)
    prompt_id = require(rec, "id")
    subset = str(rec.get("subset", ""))
    domain, sub = domain_of(Path(raw.path).name.split(".")[0], subset)
    messages = [user(prompt)]
    offset = prompt_id if isinstance(prompt_id, int) else stable_hash(prompt_id)
    out = []
    for i in range(3):
        for j in range(3):
            # Alternate the chosen side over the 9 cells, offset per prompt, so
            # position carries no signal.
            pos = (i * 3 + j + offset) % 2
            responses = [chosen[i], rejected[j]] if pos == 0 else [rejected[j], chosen[i]]
            out.append(
                Example(
                    id=f"{SOURCE}/{sub}/{prompt_id}/c{i}r{j}",
                    source=SOURCE,
                    category=domain,
                    messages=messages,
                    responses=responses,
                    best=pos,
                    ranking=[pos, 1 - pos],
                    meta={
                        "prompt_id": prompt_id,
                        "group": f"{SOURCE}/{sub}/{prompt_id}",
                        "domain": domain,
                        "subset": sub,
                        "source_subset": subset,
                        "chosen_style": i,
                        "rejected_style": j,
                        "chosen_style_name": STYLES[i],
                        "rejected_style_name": STYLES[j],
                    },
                )
            )
    return out


def convert_rm_bench(raws, sink: Sink) -> list[Example]:
    return convert(raws, _pairs, sink)


def load_rm_bench(path: str | Path, skip_bad: bool = False) -> LoadResult:
    """All 3x3 style pairs of every prompt in an RM-Bench file or folder of files."""
    sink = Sink(skip_bad)
    out: list[Example] = []
    for f in data_files(path):
        out.extend(convert_rm_bench(read_records(f, sink), sink))
    return LoadResult(out, sink.skipped)
