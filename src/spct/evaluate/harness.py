"""Evaluation: greedy in every order, Voting@k and MetaRM@k, each scored by its benchmark's own
rule and shown beside position-only baselines and a bootstrap interval.

Greedy judges every item in every rotation of its responses (both orders of a pair), so a
judge that always names one slot scores chance, and reports how often its verdict survives
a change of order and which presented slot it picks. Sampled evaluation shuffles per sample
(the paper's protocol). Voting@k for every k comes from ONE draw of the largest k: sample
``j`` of an item is the same whichever k it counts towards.

Every accuracy column carries: the official-rule headline (``accuracy``), the paper's
random tie-break (``accuracy_paper``), a 95% bootstrap interval over *content groups* (an
item and its copies: normalised conversation plus the set of responses), and what judges
that never read the question score on the same items with the same presented orders under
the same scoring: position baselines (chance, "always the first slot", "always the last
slot") and surface baselines (a response-only classifier, the longest and the shortest
response; :mod:`spct.evaluate.surface`). ``above_baselines`` claims a gain only when the
interval's lower bound clears the best of all six.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spct.engine.sampler import SamplingParams
from spct.evaluate.heldout import content_key
from spct.evaluate.paired import MEAN_OF_JUDGMENTS, group_credit, paired_difference
from spct.evaluate.scoring import Outcome, benchmark_of, credit_rule, headline, is_rating, score
from spct.evaluate.surface import SURFACE_BASELINES, Fit, fit_training, surface_scores
from spct.grm.judge import JudgeItem, Sample, Verdict, decide, judge, rotations
from spct.grm.parse import Judgment
from spct.grm.rules import MetaRM, default_k_meta, pick_best, sample_rng, to_original, vote
from spct.types import Example

if TYPE_CHECKING:
    from spct.config import Profile
    from spct.engine import Engine

RULES = ("official", "paper")


@dataclass
class EvalSettings:
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    greedy: bool = True
    k_meta: int | None = None  # MetaRM@k keeps this many of k (default k/2)
    limit: int | None = None  # first N items of each dataset (an item = all examples of one meta["group"])
    sampling: SamplingParams = field(default_factory=SamplingParams)  # the sampled pass; greedy sets temperature 0
    bootstrap: int = 1000  # resamples of the content groups for each 95% interval
    baseline_draws: int = 200  # random judges averaged for the chance baseline

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ValueError(f"ks must be positive integers, got {self.ks}")
        self.ks = sorted(set(self.ks))
        if self.k_meta is not None and self.k_meta < 1:
            raise ValueError("k_meta must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.bootstrap < 0 or self.baseline_draws < 1:
            raise ValueError("bootstrap must be >= 0 and baseline_draws >= 1")

    @classmethod
    def from_profile(cls, profile: "Profile") -> "EvalSettings":
        e = profile.eval
        return cls(ks=list(e.ks), greedy=e.greedy, k_meta=e.k_meta, limit=e.limit, sampling=profile.sampling.params())

    def params(self, greedy: bool = False) -> SamplingParams:
        return replace(self.sampling, temperature=0.0) if greedy else self.sampling


def dataset_name(spec: str, taken: set[str]) -> str:
    """A short unique name for a data path: its file/folder stem, or the builtin's name.

    A builtin's options (``?n=80&seed=0...``) stay out of the name, which heads a table column and
    prefixes MLflow metric keys; the whole spec is kept as the dataset's ``path`` in the report.
    """
    if spec.startswith("reasoning-gym:"):
        # Named by its task list ("-" joins it: MLflow keys refuse commas), shortened past three tasks,
        # and by its curriculum level when not 0, so the same tasks at two levels get telling names.
        from spct.data.reasoning_gym import parse_spec

        opts = parse_spec(spec)
        tasks, level = opts["tasks"], opts["level"]
        base = "-".join(tasks) if len(tasks) <= 3 else f"{tasks[0]}-and-{len(tasks) - 1}-more"
        base += f"-L{level}" if level else ""
    elif spec.startswith("builtin:"):
        base = spec.partition(":")[2].partition("?")[0]
    else:
        base = Path(spec.rstrip("/")).name.split(".")[0]
    name, i = base or spec, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def take(examples: Sequence[Example], limit: int | None) -> list[Example]:
    """The first ``limit`` items, keeping whole groups (an RM-Bench prompt's 9 style pairs)
    so a benchmark's own scoring sees complete units."""
    if limit is None:
        return list(examples)
    seen: set[str] = set()
    out = []
    for ex in examples:
        g = unit_of(ex)
        if g not in seen:
            if len(seen) == limit:
                break
            seen.add(g)
        out.append(ex)
    return out


def unit_of(ex: Example) -> str:
    """The item an example belongs to: the unit the benchmark scores."""
    return str(ex.meta.get("group", ex.id))


def content_groups(examples: Sequence[Example]) -> dict[str, str]:
    """Each unit's content group: a digest of its examples' normalised conversations and response sets.

    Two units with the same content (a generator that drew the same question twice, a benchmark that
    repeats an item) are one group: the bootstrap resamples groups, so copies never count as
    independent evidence and the interval is as wide as the distinct items allow.
    """
    by_unit: dict[str, set[str]] = {}
    for ex in examples:
        by_unit.setdefault(unit_of(ex), set()).add(content_key(ex))
    return {u: "|".join(sorted(keys)) for u, keys in by_unit.items()}


def mistake_of(ex: Example) -> str | None:
    """The kind of mistake the wrong responses make, where the data names it (``meta["mistake"]``,
    or the ``mistake``/``reason`` of each wrong response in ``meta["response_meta"]``)."""
    if isinstance(m := ex.meta.get("mistake"), str) and m:
        return m
    rm = ex.meta.get("response_meta")
    if not isinstance(rm, list):
        return None
    kinds = sorted({str(r.get("mistake") or r.get("reason")) for r in rm
                    if isinstance(r, dict) and not r.get("correct") and (r.get("mistake") or r.get("reason"))})
    return " + ".join(kinds) or None


@dataclass(frozen=True)
class Judgments:
    """One column's judgments: an outcome per (example, presentation) and the presented orders
    of the samples each outcome voted over (what the position baselines replay)."""

    outcomes: list[Outcome]
    perms: list[list[list[int]]]


def outcome(ex: Example, v: Verdict) -> Outcome:
    return Outcome(ex, v.totals, v.used, v.best, unit_of(ex))


def voted(
    examples: Sequence[Example],
    keys: Sequence[str],
    rows: Sequence[Sequence[Sample]],
    k: int,
    *,
    seed: int,
    meta: Sequence[Sequence[float]] | None = None,
    k_meta: int | None = None,
) -> Judgments:
    """Vote over the first ``k`` samples of every row (meta-guided when ``meta`` is given)."""
    outs, perms = [], []
    for i, (ex, key, row) in enumerate(zip(examples, keys, rows)):
        if len(row) < k:
            raise ValueError(f"{ex.id}: {len(row)} samples, cannot vote over {k}")
        ms = meta[i][:k] if meta is not None else None
        km = min(k_meta or default_k_meta(k), k) if meta is not None else None
        v = decide(key, row[:k], ex.n, seed=seed, meta_scores=ms, k_meta=km)
        outs.append(outcome(ex, v))
        perms.append([row[j].perm for j in v.kept])
    return Judgments(outs, perms)


def per_order(examples: Sequence[Example], keys: Sequence[str], rows: Sequence[Sequence[Sample]], *, seed: int) -> Judgments:
    """Greedy: one outcome per presented order (every rotation counted)."""
    outs, perms = [], []
    for ex, key, row in zip(examples, keys, rows):
        for s in row:
            outs.append(outcome(ex, decide(key, [s], ex.n, seed=seed)))
            perms.append([s.perm])
    return Judgments(outs, perms)


# ---------------------------------------------------------------- baselines and intervals


def _position_scores(n: int, slot: int) -> list[int]:
    return [10 if p == slot else 1 for p in range(n)]


def replay(j: Judgments, presented: Any, seed: int) -> list[Outcome]:
    """The outcomes a judge that scores by presented slot alone would get on the same
    examples and orders: ``presented(n, j)`` gives the scores of sample ``j`` in presented order."""
    outs = []
    for o, perms in zip(j.outcomes, j.perms):
        n = o.example.n
        totals = vote([to_original(presented(n, s), perm) for s, perm in enumerate(perms)], n).totals
        pick = pick_best(totals, sample_rng(seed, o.unit, -2))
        outs.append(Outcome(o.example, totals, len(perms), pick, o.unit))
    return outs


def surface_replay(j: Judgments, scores: Mapping[str, Sequence[float]], seed: int) -> list[Outcome]:
    """The outcomes of a judge that gives each response the same score in every order and sample
    (``scores`` by example id, original order): what a judge reading only the responses gets."""
    outs = []
    for o in j.outcomes:
        totals = list(scores[o.example.id])
        pick = pick_best(totals, sample_rng(seed, o.unit, -3))
        # used=1: the judge always answers, and its totals are its scores (RewardBench 2 Ties reads totals/used).
        outs.append(Outcome(o.example, totals, 1, pick, o.unit))
    return outs


def baselines(
    j: Judgments, benchmark: str, *, seed: int, draws: int, surface: Mapping[str, Sequence[Outcome]] | None = None
) -> dict[str, dict[str, float]]:
    """Per rule: chance (random distinct scores, averaged over ``draws``), first slot, last slot and
    each surface judge's outcomes in ``surface`` (:func:`surface_outcomes`)."""
    first = replay(j, lambda n, s: _position_scores(n, 0), seed)
    last = replay(j, lambda n, s: _position_scores(n, n - 1), seed)
    rng = random.Random(f"chance:{seed}")
    chance = {r: 0.0 for r in RULES}
    for _ in range(draws):
        outs = replay(j, lambda n, s: rng.sample(range(1, max(10, n) + 1), n), rng.randrange(2**31))
        for r in RULES:
            chance[r] += headline(outs, benchmark, r) / draws
    out = {
        r: {"chance": chance[r], "first_slot": headline(first, benchmark, r), "last_slot": headline(last, benchmark, r)}
        for r in RULES
    }
    for name, outs in (surface or {}).items():
        for r in RULES:
            out[r][name] = headline(outs, benchmark, r)
    return out


def surface_outcomes(
    j: Judgments, surface: Mapping[str, Mapping[str, Sequence[float]]] | None, seed: int
) -> dict[str, list[Outcome]]:
    """Each surface judge's outcomes on ``j``'s judgments; none for ratings (a length is no 1-10 rating)
    or for a judge that has no scores (the classifier could not be fitted)."""
    if not surface or not j.outcomes or any(is_rating(o.example) for o in j.outcomes):
        return {}
    out = {}
    for name in SURFACE_BASELINES:
        if all(name in surface.get(o.example.id, {}) for o in j.outcomes):
            out[name] = surface_replay(j, {i: s[name] for i, s in surface.items() if name in s}, seed)
    return out


def bootstrap_ci(
    outcomes: Sequence[Outcome], benchmark: str, rule: str, *, resamples: int, seed: int,
    groups: Mapping[str, str] | None = None,
) -> list[float] | None:
    """95% percentile interval of the headline, resampling whole content groups (all of an item's
    orders, and every copy of the same content, together; ``groups`` maps unit -> group, default:
    each unit its own group); a unit drawn twice is renamed so the scorer keeps its copies apart."""
    if resamples == 0 or not outcomes:
        return None
    by_group: dict[str, dict[str, list[Outcome]]] = {}
    for o in outcomes:
        g = groups.get(o.unit, o.unit) if groups else o.unit
        by_group.setdefault(g, {}).setdefault(o.unit, []).append(o)
    rng = random.Random(f"bootstrap:{seed}:{rule}")
    stats = sorted(headline(resample(by_group, rng), benchmark, rule) for _ in range(resamples))
    return [stats[int(0.025 * (len(stats) - 1))], stats[int(round(0.975 * (len(stats) - 1)))]]


def resample(by_group: Mapping[str, Mapping[str, Sequence[Outcome]]], rng: random.Random) -> list[Outcome]:
    """As many groups as there are, drawn with replacement; the second copy of unit ``u`` is ``u#1``."""
    seen: dict[str, int] = {}
    drawn: list[Outcome] = []
    for g in rng.choices(list(by_group), k=len(by_group)):
        c = seen[g] = seen.get(g, -1) + 1
        for u, outs in by_group[g].items():
            drawn += outs if c == 0 else [replace(o, unit=f"{u}#{c}") for o in outs]
    return drawn


@dataclass(frozen=True)
class DatasetContext:
    """What every column of one dataset shares: content groups (unit -> group, for the bootstrap)
    and the surface judges' scores (example id -> judge -> response scores)."""

    groups: Mapping[str, str] = field(default_factory=dict)
    surface: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)


def column(j: Judgments, benchmark: str, settings: EvalSettings, ctx: DatasetContext | None = None) -> dict[str, Any]:
    """A result column: the benchmark's score, the paper-protocol headline, intervals, baselines."""
    ctx = ctx or DatasetContext()
    seed = settings.sampling.seed
    # Large sets (a whole RMB release) get fewer resamples and random judges: each one re-scores
    # every judgment, and their spread shrinks with n anyway. The counts used are reported.
    n = max(1, len(j.outcomes))
    resamples = min(settings.bootstrap, max(200, 2_000_000 // n))
    draws = min(settings.baseline_draws, max(20, 400_000 // n))
    res = score(j.outcomes, benchmark)
    surface = surface_outcomes(j, ctx.surface, seed)  # replayed once: the baselines and the breakdowns read them
    base = baselines(j, benchmark, seed=seed, draws=draws, surface=surface)
    for rule, key in (("official", "ci95"), ("paper", "ci95_paper")):
        res[key] = bootstrap_ci(j.outcomes, benchmark, rule, resamples=resamples, seed=seed, groups=ctx.groups)
    res["bootstrap_resamples"], res["chance_draws"] = resamples if settings.bootstrap else 0, draws
    res["baselines"] = base["official"]
    res["baselines_paper"] = base["paper"]
    res["judgments"] = len(j.outcomes)
    units = {o.unit for o in j.outcomes}
    res["items"] = len(units)
    res["distinct"] = len({ctx.groups.get(u, u) for u in units})
    best_name = max(base["official"], key=lambda b: base["official"][b])
    res["best_baseline"] = best_name
    # A gain is claimed only when the interval's LOWER bound clears the best judge that does not read
    # the question (position or surface): matching a capital-letter counter is no gain.
    res["above_baselines"] = res["ci95"] is not None and res["ci95"][0] > base["official"][best_name]
    res |= breakdowns(j, benchmark, surface.get("response_only"))
    if benchmark in MEAN_OF_JUDGMENTS:
        # Per content group: official credit summed and judgments counted, so two columns judged on the
        # same items can be differenced pair-wise (spct.evaluate.paired; the study's difference table).
        res["by_group"] = group_credit(j.outcomes, ctx.groups, credit_rule(benchmark, "official"))
    return res


def breakdowns(j: Judgments, benchmark: str, surf: Sequence[Outcome] | None) -> dict[str, Any]:
    """The response-only judge (``surf``: its outcomes on ``j``) per category, and model vs
    response-only per mistake type, so a category or mistake whose answers give themselves away is seen."""
    out: dict[str, Any] = {}
    if surf is not None:
        out["baseline_categories"] = {"response_only": score(surf, benchmark).get("categories", {})}
    kinds: dict[str, list[int]] = {}
    for i, o in enumerate(j.outcomes):
        if (m := mistake_of(o.example)) is not None:
            kinds.setdefault(m, []).append(i)
    if kinds:
        out["mistakes"] = {
            m: {
                "items": len({j.outcomes[i].unit for i in idx}),
                "accuracy": headline([j.outcomes[i] for i in idx], benchmark),
                **({"response_only": headline([surf[i] for i in idx], benchmark)} if surf is not None else {}),
            }
            for m, idx in sorted(kinds.items())
        }
    return out


def position_stats(examples: Sequence[Example], rows: Sequence[Sequence[Sample]]) -> dict[str, Any]:
    """How greedy verdicts depend on order: consistency across all orders, and picks per presented slot.

    A pick is the unique top score of one presentation (a tie or no parse is no pick). An item
    is consistent when every order picks, and all pick the same response.
    """
    slots: dict[str, int] = {}
    consistent = total = 0
    for ex, row in zip(examples, rows):
        picks = []
        for s in row:
            top = None
            if s.scores is not None:
                m = max(s.scores)
                if s.scores.count(m) == 1:
                    top = s.scores.index(m)
            picks.append(top)
            label = "none" if top is None else str(s.perm.index(top) + 1)
            slots[label] = slots.get(label, 0) + 1
            total += 1
        consistent += picks[0] is not None and len(set(picks)) == 1
    order = sorted((k for k in slots if k != "none"), key=int) + (["none"] if "none" in slots else [])
    return {
        "consistency": consistent / len(rows) if rows else 0.0,
        "slot_shares": {k: slots[k] / total for k in order},
    }


# ---------------------------------------------------------------- datasets


def sample_record(dataset: str, ex: Example, j: int, s: Sample, mode: str) -> dict[str, Any]:
    """One line of samples.jsonl: the critique and what was read from it."""
    rec: dict[str, Any] = {
        "dataset": dataset, "example_id": ex.id, "mode": mode, "sample": j, "perm": s.perm, "best": ex.best,
        "text": s.text, "scores": s.scores, "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
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
    surface_fit: Fit | None = None,
    reference: tuple[str, "Engine"] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score one dataset; returns its report entry and its samples.jsonl records.

    ``surface_fit`` (:func:`spct.evaluate.surface.fit_training` of the items the model trained on)
    is the response-only baseline; without one it is cross-fitted on the evaluation items themselves.
    ``reference`` = (label, engine): a second model (the cold start a chain began from) judged greedy
    in every order on the same items, as the column ``{label}_greedy``, and the paired difference of
    the model's greedy column minus it in ``entry["differences"]``.
    """
    start = time.perf_counter()
    examples = take(examples, settings.limit)
    if not examples:
        raise ValueError(f"dataset {name!r} has no examples to evaluate")
    ids = [ex.id for ex in examples]
    if len(set(ids)) != len(ids):
        raise ValueError(f"dataset {name!r} has duplicate example ids; scoring groups judgments by item")
    benchmark = benchmark_of(examples)
    seed = settings.sampling.seed
    records: list[dict[str, Any]] = []
    groups = content_groups(examples)
    surface, surface_info = surface_scores(examples, {ex.id: groups[unit_of(ex)] for ex in examples}, surface_fit or Fit(),
                                           seed=seed)
    ctx = DatasetContext(groups, surface)
    entry: dict[str, Any] = {
        "benchmark": benchmark, "n": len(examples), "items": len(groups), "distinct": len(set(groups.values())),
        "duplicates": len(groups) - len(set(groups.values())), "surface": surface_info,
    }  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    tokens: list[int] = []

    def greedy_column(eng: "Engine", mode: str) -> tuple[dict[str, Any], list[Sample]]:
        items = [JudgeItem(ex.messages, ex.responses, orders=rotations(ex.n)) for ex in examples]
        rows = [j.samples for j in judge(eng, items, settings.params(greedy=True), progress=progress)]
        res = column(per_order(examples, [it.key for it in items], rows, seed=seed), benchmark, settings, ctx)
        res.update(orders="every rotation", **position_stats(examples, rows))
        records.extend(sample_record(name, ex, j, s, mode) for ex, row in zip(examples, rows) for j, s in enumerate(row))
        return res, [s for row in rows for s in row]

    if settings.greedy:
        results["greedy"], flat = greedy_column(engine, "greedy")
        entry["greedy_parse_rate"] = _rate(s.scores is not None for s in flat)
        tokens += [s.completion_tokens for s in flat]
    if reference is not None:
        label, ref_engine = reference
        results[f"{label}_greedy"], flat = greedy_column(ref_engine, f"{label}_greedy")
        entry[f"{label}_greedy_parse_rate"] = _rate(s.scores is not None for s in flat)
        if "by_group" in results.get("greedy", {}) and "by_group" in results[f"{label}_greedy"]:
            entry["differences"] = {f"greedy - {label}_greedy": paired_difference(
                results["greedy"]["by_group"], results[f"{label}_greedy"]["by_group"], seed=seed)}

    kmax = max(settings.ks)
    k_meta = (settings.k_meta or default_k_meta(kmax)) if meta_rm is not None else None
    items = [JudgeItem(ex.messages, ex.responses, k=kmax, k_meta=k_meta) for ex in examples]
    judged = judge(engine, items, settings.params(), meta_rm=meta_rm, progress=progress)
    rows = [j.samples for j in judged]
    keys = [it.key for it in items]
    for k in settings.ks:
        results[f"voting@{k}"] = column(voted(examples, keys, rows, k, seed=seed), benchmark, settings, ctx)
    flat = [s for row in rows for s in row]
    entry["parse_rate"] = _rate(s.scores is not None for s in flat)
    failures: dict[str, int] = {}
    for s in flat:
        if not isinstance(s.result, Judgment):
            failures[s.result.reason] = failures.get(s.result.reason, 0) + 1
    entry["parse_failures"] = dict(sorted(failures.items()))
    tokens += [s.completion_tokens for s in flat]

    meta = [j.meta_scores or [] for j in judged] if meta_rm is not None else None
    if meta is not None:
        for k in settings.ks:
            j = voted(examples, keys, rows, k, seed=seed, meta=meta, k_meta=settings.k_meta)
            results[f"metarm@{k}"] = column(j, benchmark, settings, ctx)

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
    train: Sequence[Example] | None = None,
    reference: tuple[str, "Engine"] | None = None,
) -> dict[str, Any]:
    """Evaluate every dataset; with ``out_dir``, also write report.json/.md, scaling.png, samples.jsonl.

    ``reference`` = (label, engine): another model judged greedy beside this one on every dataset
    (see :func:`evaluate_dataset`), e.g. the cold start, so the report shows what the later stages added.
    ``data_info`` (by dataset name) is copied into each entry's ``data`` field: where it came
    from, how many records the loader skipped, and the held-out check's result. ``train`` (the
    training items) fits the response-only baseline (see :func:`evaluate_dataset`).
    """
    import spct

    report: dict[str, Any] = {
        "model": model or getattr(engine, "name", None) or getattr(engine, "spec", None) or type(engine).__name__,
        "spct_version": spct.__version__,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": asdict(settings),
        "meta_rm": meta_rm is not None,
        **({"reference": {"label": reference[0], "model": getattr(reference[1], "name", None)}} if reference else {}),
        "datasets": {},
    }
    all_records: list[dict[str, Any]] = []
    fit = fit_training(train, settings.sampling.seed)  # once: every dataset is held against the same training items
    for name, examples in datasets.items():
        entry, records = evaluate_dataset(engine, name, examples, settings, meta_rm=meta_rm, progress=progress,
                                          surface_fit=fit, reference=reference)
        if data_info and name in data_info:
            entry["data"] = dict(data_info[name])
        report["datasets"][name] = entry
        all_records += records
    if out_dir is not None:
        from spct.evaluate.report import write_report

        report["files"] = write_report(out_dir, report, all_records)
    return report
