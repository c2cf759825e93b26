"""Evaluation: greedy, Voting@k and MetaRM@k over datasets, each scored by its benchmark's own rule.

Voting@k for every k comes from ONE draw of the largest k: sample ``j`` of an
item is the same whichever k it counts towards, so Voting@k is computed on the
first k samples and the curve costs only max(ks) generations per item.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spct.evaluate.scoring import Outcome, benchmark_of, score
from spct.grm.judge import JudgeItem, Sample, Verdict, decide, sample_judgments
from spct.grm.parse import Judgment
from spct.grm.rules import MetaRM, default_k_meta
from spct.types import Example

if TYPE_CHECKING:
    from spct.config import Profile
    from spct.engine import Engine


@dataclass
class EvalSettings:
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    greedy: bool = True
    k_meta: int | None = None  # MetaRM@k keeps this many of k (default k/2)
    limit: int | None = None  # first N items of each dataset (an item = all examples of one meta["group"])
    seed: int = 0
    temperature: float = 0.5  # the paper samples critiques at 0.5
    top_p: float = 1.0
    max_new_tokens: int = 256
    token_budget: int = 8192

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks}")
        self.ks = sorted(set(self.ks))
        if self.k_meta is not None and self.k_meta < 1:
            raise ValueError("k_meta must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")

    @classmethod
    def from_profile(cls, profile: "Profile") -> "EvalSettings":
        s, e = profile.sampling, profile.eval
        return cls(
            ks=list(e.ks), greedy=e.greedy, k_meta=e.k_meta, limit=e.limit, seed=s.seed,
            temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, token_budget=s.token_budget,
        )  # fmt: skip

    def params(self, greedy: bool = False) -> Any:
        from spct.engine import SamplingParams

        return SamplingParams(
            temperature=0.0 if greedy else self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            token_budget=self.token_budget,
        )


def take(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """The first ``limit`` items, keeping whole groups (an RM-Bench prompt's 9 style pairs,
    a JudgeBench pair's two orders) so a benchmark's own scoring sees complete units."""
    if limit is None:
        return list(examples)
    seen: set[str] = set()
    out = []
    for ex in examples:
        g = str(ex.meta.get("group", ex.id))
        if g not in seen:
            if len(seen) == limit:
                break
            seen.add(g)
        out.append(ex)
    return out


def outcomes_for(
    examples: Sequence[Example],
    rows: Sequence[Sequence[Sample]],
    k: int,
    *,
    seed: int,
    meta: Sequence[Sequence[float]] | None = None,
    k_meta: int | None = None,
) -> tuple[list[Outcome], list[Verdict]]:
    """Vote over the first ``k`` samples of every row (meta-guided when ``meta`` is given)."""
    outcomes, verdicts = [], []
    for i, (ex, row) in enumerate(zip(examples, rows)):
        if len(row) < k:
            raise ValueError(f"{ex.id}: {len(row)} samples, cannot vote over {k}")
        ms = meta[i][:k] if meta is not None else None
        km = min(k_meta or default_k_meta(k), k) if meta is not None else None
        v = decide(ex.id, row[:k], ex.n, seed=seed, meta_scores=ms, k_meta=km)
        outcomes.append(Outcome(ex, v.totals, v.best, v.tied, v.used))
        verdicts.append(v)
    return outcomes, verdicts


def sample_record(dataset: str, ex: Example, j: int, s: Sample, mode: str) -> dict[str, Any]:
    """One line of samples.jsonl: the critique and what was read from it."""
    rec: dict[str, Any] = {
        "dataset": dataset, "example_id": ex.id, "mode": mode, "sample": j, "perm": s.perm, "text": s.text,
        "scores": s.scores, "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
        "finished": s.finished,
    }  # fmt: skip
    if not isinstance(s.result, Judgment):
        rec["parse_failure"] = {"reason": s.result.reason, "detail": s.result.detail}
    return rec


def evaluate_dataset(
    engine: "Engine",
    name: str,
    examples: Sequence[Example],
    settings: EvalSettings,
    *,
    meta_rm: MetaRM | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score one dataset; returns its report entry and its samples.jsonl records."""
    start = time.perf_counter()
    examples = take(examples, settings.limit)
    if not examples:
        raise ValueError(f"dataset {name!r} has no examples to evaluate")
    ids = [ex.id for ex in examples]
    if len(set(ids)) != len(ids):
        raise ValueError(f"dataset {name!r} has duplicate example ids; sampling seeds depend on unique ids")
    benchmark = benchmark_of(examples)
    items = [JudgeItem.from_example(ex) for ex in examples]
    records: list[dict[str, Any]] = []
    groups = {str(ex.meta.get("group", ex.id)) for ex in examples}
    entry: dict[str, Any] = {"benchmark": benchmark, "n": len(examples), "items": len(groups)}
    results: dict[str, dict[str, Any]] = {}
    tokens: list[int] = []

    if settings.greedy:
        rows = sample_judgments(engine, items, 1, settings.params(greedy=True), shuffle=False, progress=progress)
        outcomes, _ = outcomes_for(examples, rows, 1, seed=settings.seed)
        results["greedy"] = score(outcomes, benchmark)
        greedy_samples = [row[0] for row in rows]
        entry["greedy_parse_rate"] = _rate(s.scores is not None for s in greedy_samples)
        tokens += [s.completion_tokens for s in greedy_samples]
        records += [sample_record(name, ex, 0, row[0], "greedy") for ex, row in zip(examples, rows)]

    kmax = max(settings.ks)
    rows = sample_judgments(engine, items, kmax, settings.params(), shuffle=True, progress=progress)
    for k in settings.ks:
        outcomes, _ = outcomes_for(examples, rows, k, seed=settings.seed)
        results[f"voting@{k}"] = score(outcomes, benchmark)
    flat = [s for row in rows for s in row]
    entry["parse_rate"] = _rate(s.scores is not None for s in flat)
    failures: dict[str, int] = {}
    for s in flat:
        if not isinstance(s.result, Judgment):
            failures[s.result.reason] = failures.get(s.result.reason, 0) + 1
    entry["parse_failures"] = dict(sorted(failures.items()))
    tokens += [s.completion_tokens for s in flat]

    meta = None
    if meta_rm is not None:
        rated = meta_rm.rate([s.prompt for s in flat], [s.text for s in flat])
        meta = [rated[i * kmax : (i + 1) * kmax] for i in range(len(items))]
        for k in settings.ks:
            outcomes, _ = outcomes_for(examples, rows, k, seed=settings.seed, meta=meta, k_meta=settings.k_meta)
            results[f"metarm@{k}"] = score(outcomes, benchmark)

    for i, (ex, row) in enumerate(zip(examples, rows)):
        for j, s in enumerate(row):
            rec = sample_record(name, ex, j, s, "sample")
            if meta is not None:
                rec["meta_score"] = meta[i][j]
            records.append(rec)

    for key, res in results.items():
        entry[key] = res["accuracy"]
    entry["mean_generated_tokens"] = sum(tokens) / len(tokens) if tokens else 0.0
    entry["seconds"] = round(time.perf_counter() - start, 3)
    entry["results"] = results
    return entry, records


def _rate(flags: Any) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else 0.0


def evaluate(
    engine: "Engine",
    datasets: Mapping[str, Sequence[Example]],
    settings: EvalSettings,
    meta_rm: MetaRM | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    model: str | None = None,
    data_info: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate every dataset; with ``out_dir``, also write report.json/.md, scaling.png, samples.jsonl.

    ``data_info`` (by dataset name) is copied into each entry's ``data`` field: where it came
    from and how many records the loader skipped.
    """
    import spct

    report: dict[str, Any] = {
        "model": model or getattr(engine, "name", None) or getattr(engine, "spec", None) or type(engine).__name__,
        "spct_version": spct.__version__,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "meta_rm": meta_rm is not None,
        "datasets": {},
    }
    all_records: list[dict[str, Any]] = []
    for name, examples in datasets.items():
        entry, records = evaluate_dataset(engine, name, examples, settings, meta_rm=meta_rm, progress=progress)
        if data_info and name in data_info:
            entry["data"] = dict(data_info[name])
        report["datasets"][name] = entry
        all_records += records
    if out_dir is not None:
        from spct.evaluate.report import write_report

        report["files"] = write_report(out_dir, report, all_records)
    return report
