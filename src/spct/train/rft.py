"""Rejective fine-tuning (RFT), the first stage of SPCT.

1. Sample N critiques per training item (each with its own shuffled order).
2. Label each with the strict rule: the true best strictly on top; ties and parse failures are wrong.
3. Drop wrong trajectories, and every trajectory of an item whose N were all right (too easy).
4. Items with no right trajectory get hinted sampling ("The best response is: Response j."); the
   right hinted trajectories are kept and flagged ``hinted`` (``rft.hint=false`` turns this off).
5. SFT on what was kept, loss on the generated tokens only.

Hinted trajectories are trained on the prompt *without* the hint line: the deployed
GRM never sees one. Their share stays measurable through the ``hinted`` flag and counts.

The keep rate (:func:`keep_rates`: the share of items that yielded a kept trajectory) says how
much RFT found to learn from. With a ``reasoning-gym:`` spec and ``rft.curriculum``, a level whose
items are mostly too easy is followed by the next level's items (:func:`sample_levels`), until
enough were kept or the rounds or levels run out; each level's counts go to ``levels.json``.

    spct rft --config tiny --model runs/tiny/coldstart/model --out runs/tiny/rft
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from spct.grm.judge import JudgeItem, Sample, judge
from spct.grm.prompt import render_judge, special_strings
from spct.grm.rules import is_right, permutation, sample_rng
from spct.types import Example

Reason = Literal["kept", "wrong", "parse_failure", "too_easy", "hinted", "hinted_wrong"]
ItemOutcome = Literal["kept", "too_easy", "hinted", "unsolved"]
REASONS: tuple[Reason, ...] = ("kept", "wrong", "parse_failure", "too_easy", "hinted", "hinted_wrong")
# What each curriculum level logs (as rft_level_<name>), beside its level number.
LEVEL_METRICS = ("items", "items_kept", "items_hinted", "items_too_easy", "items_unsolved", "keep_rate",
                 "trajectory_keep_rate", "too_easy_rate")  # fmt: skip


@dataclass(frozen=True)
class Trajectory:
    """One sampled critique with its verdict. ``keep`` = it goes into the SFT set."""

    item_id: str
    sample: int
    perm: list[int]
    prompt: str  # what the model saw (with the hint line when hinted)
    text: str
    completion_ids: list[int]
    scores: list[int] | None
    right: bool
    hinted: bool
    reason: Reason

    @property
    def keep(self) -> bool:
        return self.reason in ("kept", "hinted")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def label_item(ex: Example, samples: Sequence[Sample], hinted: Sequence[Sample] = ()) -> tuple[list[Trajectory], ItemOutcome]:
    """Apply the RFT rules to one item's plain (and, if any, hinted) samples."""
    right = [is_right(ex, s.scores) for s in samples]
    too_easy = bool(samples) and all(right)
    out: list[Trajectory] = []
    for j, (s, ok) in enumerate(zip(samples, right)):
        reason: Reason = "too_easy" if too_easy else "kept" if ok else "wrong" if s.scores is not None else "parse_failure"
        out.append(_trajectory(ex, j, s, ok, False, reason))
    if any(right):
        return out, "too_easy" if too_easy else "kept"
    any_hinted = False
    for j, s in enumerate(hinted):
        ok = is_right(ex, s.scores)
        any_hinted |= ok
        out.append(_trajectory(ex, j, s, ok, True, "hinted" if ok else "hinted_wrong"))
    return out, "hinted" if any_hinted else "unsolved"


def _trajectory(ex: Example, j: int, s: Sample, ok: bool, hinted: bool, reason: Reason) -> Trajectory:
    return Trajectory(ex.id, j, list(s.perm), s.prompt, s.text, list(s.completion_ids), s.scores, ok, hinted, reason)


@dataclass
class RFTData:
    trajectories: list[Trajectory]
    counts: dict[str, int]  # per trajectory reason, plus items_<outcome>

    @property
    def kept(self) -> list[Trajectory]:
        return [t for t in self.trajectories if t.keep]


def count(trajectories: Sequence[Trajectory], outcomes: Sequence[ItemOutcome]) -> dict[str, int]:
    c = Counter(t.reason for t in trajectories)
    o = Counter(outcomes)
    counts = {r: c.get(r, 0) for r in REASONS}
    counts.update({f"items_{k}": o.get(k, 0) for k in ("kept", "too_easy", "hinted", "unsolved")})
    counts["items"] = len(outcomes)
    return counts


def judge_item(ex: Example, k: int, seed: int, orders: str = "random", hint: bool = False) -> JudgeItem:
    """``k`` samples of ``ex``: each in its own seeded shuffle (``random``), or (``rotations``) sample j in
    rotation j mod n of a seeded base order, so every n consecutive samples show the gold once in every slot."""
    item = JudgeItem.from_example(ex, k=k, hint=hint)
    if orders == "random":
        return item
    if orders != "rotations":
        raise ValueError(f"unknown orders {orders!r} (random or rotations)")
    base = permutation(ex.n, sample_rng(seed, item.key, -1))
    rot = [tuple(base[r:] + base[:r]) for r in range(ex.n)]
    return replace(item, orders=tuple(rot[j % ex.n] for j in range(k)))


def rejective_sample(
    engine: Any,
    examples: Sequence[Example],
    n: int,
    params: Any,
    *,
    hint: bool = True,
    progress: bool = False,
    orders: str = "random",
) -> RFTData:
    """Steps 1-4: sample, label, hint where nothing was right. All generation goes through the shared sampler."""
    plain_items = [judge_item(ex, n, params.seed, orders) for ex in examples]
    plain = [j.samples for j in judge(engine, plain_items, params, progress=progress)]
    unsolved = [i for i, (ex, row) in enumerate(zip(examples, plain)) if not any(is_right(ex, s.scores) for s in row)]
    hinted: dict[int, list[Sample]] = {}
    if hint and unsolved:
        hint_items = [judge_item(examples[i], n, params.seed + 1, orders, hint=examples[i].best is not None) for i in unsolved]
        # A different seed: the hinted draws are new samples, not the failed ones again with a hint.
        rows = [j.samples for j in judge(engine, hint_items, replace(params, seed=params.seed + 1), progress=progress)]
        hinted = {i: row for i, row in zip(unsolved, rows) if examples[i].best is not None}
    trajectories: list[Trajectory] = []
    outcomes: list[ItemOutcome] = []
    for i, (ex, row) in enumerate(zip(examples, plain)):
        t, o = label_item(ex, row, hinted.get(i, ()))
        trajectories += t
        outcomes.append(o)
    return RFTData(trajectories, count(trajectories, outcomes))


def keep_rates(counts: Mapping[str, int]) -> dict[str, float]:
    """Shares of a :func:`count`: items that yielded at least one kept trajectory (``keep_rate``),
    trajectories kept of those sampled, hinted ones included (``trajectory_keep_rate``), and items
    too easy (``too_easy_rate``: all N right, nothing to learn)."""
    items, trajectories = counts["items"], sum(counts[r] for r in REASONS)
    return {
        "keep_rate": (counts["items_kept"] + counts["items_hinted"]) / items if items else 0.0,
        "trajectory_keep_rate": (counts["kept"] + counts["hinted"]) / trajectories if trajectories else 0.0,
        "too_easy_rate": counts["items_too_easy"] / items if items else 0.0,
    }


def merge(parts: Sequence[RFTData]) -> RFTData:
    """Several rounds' trajectories as one set, their counts summed."""
    counts = {k: sum(p.counts[k] for p in parts) for k in parts[0].counts}
    return RFTData([t for p in parts for t in p.trajectories], counts)


def next_level(level: int, top: int, total: Mapping[str, int], last: Mapping[str, int], cfg: Any, rounds: int) -> int | None:
    """The curriculum level to sample next, or None to stop.

    One level up while all of these hold: fewer than ``cfg.min_keep_rate`` of all items sampled so
    far (``total``) yielded a kept trajectory; more than ``cfg.max_too_easy`` of the last level's
    items (``last``) were too easy (a level mostly unsolved or mostly kept would not gain from a
    harder one); fewer than ``cfg.curriculum_rounds`` levels were added (``rounds``); ``level < top``.
    """
    if rounds >= cfg.curriculum_rounds or level >= top:
        return None
    if keep_rates(total)["keep_rate"] >= cfg.min_keep_rate or keep_rates(last)["too_easy_rate"] <= cfg.max_too_easy:
        return None
    return level + 1


def top_level(spec: str, max_level: int | None = None) -> int:
    """The highest level a reasoning-gym spec's curriculum may reach: the lowest top among its tasks,
    capped at ``max_level``."""
    from spct.data.reasoning_gym import max_level as task_top
    from spct.data.reasoning_gym import parse_spec

    top = min(task_top(t) for t in parse_spec(spec)["tasks"])
    return top if max_level is None else min(top, max_level)


def sample_levels(
    engine: Any,
    spec: str | None,
    examples: Sequence[Example],
    cfg: Any,
    params: Any,
    *,
    load: Callable[[str], Sequence[Example]],
    progress: bool = False,
) -> tuple[RFTData, list[Example], list[dict[str, Any]]]:
    """Rejective sampling of ``examples`` (the items of ``spec``; None: items from elsewhere) and, with
    ``cfg.curriculum`` and a ``reasoning-gym:`` spec, of ``load(with_level(spec, level))`` for each
    level :func:`next_level` names.

    Returns every round's trajectories (counts summed), every item sampled, and one record per round:
    its spec, level (None without the curriculum), :func:`count` and :func:`keep_rates`.
    """
    from spct.data.reasoning_gym import PREFIX, parse_spec, with_level

    level = top = None  # None: no curriculum, one round
    if cfg.curriculum and spec is not None and spec.startswith(PREFIX):
        level, top = parse_spec(spec)["level"], top_level(spec, cfg.max_level)
    parts: list[RFTData] = []
    items: list[Example] = []
    records: list[dict[str, Any]] = []
    at = spec
    while True:
        data = rejective_sample(engine, examples, cfg.n_samples, params, hint=cfg.hint, progress=progress, orders=cfg.orders)
        parts.append(data)
        items += examples
        records.append({"spec": at, "level": level, **data.counts, **keep_rates(data.counts)})
        if spec is None or level is None or top is None:
            break
        nxt = next_level(level, top, merge(parts).counts, data.counts, cfg, len(parts) - 1)
        if nxt is None:
            break
        level, at = nxt, with_level(spec, nxt)
        examples = list(load(at))
    return merge(parts), items, records


def training_prompt(tokenizer: Any, ex: Example, t: Trajectory, specials: Sequence[str] | None = None) -> str:
    """The prompt a kept trajectory is trained on: the same shuffled order, never the hint line."""
    if not t.hinted:
        return t.prompt
    return render_judge(tokenizer, ex.messages, [ex.responses[i] for i in t.perm], specials=specials)


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    tmp.rename(path)
    return path


def read_trajectories(path: Path) -> list[Trajectory]:
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            out.append(Trajectory(**json.loads(line)))
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}, line {n}: not an RFT trajectory record ({e})") from e
    return out


def sampling_params(profile: Any, section: Any, seed_offset: int = 0, min_new_tokens: int = 0) -> Any:
    """The profile's sampling settings with a stage section's on top (``SamplingConfig.params``)."""
    return profile.sampling.params(section, seed_offset=seed_offset, min_new_tokens=min_new_tokens)


def run(
    profile: Any,
    out_dir: Path,
    *,
    logger: Any,
    model_spec: str | None = None,
    examples: Sequence[Example] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Rejective sampling (with the curriculum's levels, :func:`sample_levels`) then prompt-masked SFT;
    writes samples.jsonl, counts.json, levels.json and ``out_dir/model``."""
    import time

    from spct.data import load
    from spct.engine import Engine
    from spct.train import runtime
    from spct.train.sft import encode, train_sft

    cfg = profile.rft
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def items_of(spec: str) -> list[Example]:
        found = load(spec).examples
        return list(found)[: cfg.limit] if cfg.limit else list(found)

    # Items handed in are not the spec's own: the curriculum only raises the level of a spec it loaded.
    spec = cfg.data if examples is None else None
    examples = items_of(cfg.data) if examples is None else (list(examples)[: cfg.limit] if cfg.limit else list(examples))
    rank, world, _ = runtime.init_env()
    model, tokenizer, device = runtime.load_for_training(
        model_spec or profile.model.spec, profile.model.dtype, profile.model.device, profile.lora, profile.train
    )

    samples_path, counts_path, levels_path = out_dir / "samples.jsonl", out_dir / "counts.json", out_dir / "levels.json"
    t0 = time.perf_counter()
    if resume and samples_path.is_file() and counts_path.is_file():
        trajectories = read_trajectories(samples_path)
        counts = json.loads(counts_path.read_text())
        levels = json.loads(levels_path.read_text()) if levels_path.is_file() else []
        # The curriculum's later levels are items too: their hinted trajectories are trained on their prompts.
        examples = examples + [ex for rec in levels[1:] for ex in items_of(rec["spec"])]
        sample_s = 0.0
    else:
        # Every rank samples the same items (same seeds): simple, and sampling is not the bottleneck at scale.
        model.eval()
        data, examples, levels = sample_levels(Engine(model, tokenizer, "policy"), spec, examples, cfg,
                                               sampling_params(profile, cfg), load=items_of, progress=progress)  # fmt: skip
        trajectories, counts = data.trajectories, data.counts
        sample_s = time.perf_counter() - t0
        if rank == 0:
            write_jsonl(samples_path, [t.to_record() for t in trajectories])
            counts_path.write_text(json.dumps(counts, indent=2))
            levels_path.write_text(json.dumps(levels, indent=2))
            logger.log_artifact(samples_path)
    by_id = {ex.id: ex for ex in examples}
    generated = sum(len(t.completion_ids) for t in trajectories)
    rates = keep_rates(counts)
    if rank == 0:
        logger.log_metrics({**{f"rft_{k}": float(v) for k, v in counts.items()}, **{f"rft_{k}": v for k, v in rates.items()}}, 0)
        # One record per curriculum level, at step = its round, so MLflow plots the levels in order.
        for i, rec in enumerate(r for r in levels if r["level"] is not None):
            logger.log_metrics({"rft_level": float(rec["level"]),
                                **{f"rft_level_{k}": float(rec[k]) for k in LEVEL_METRICS}}, i)  # fmt: skip

    kept = [t for t in trajectories if t.keep]
    specials = special_strings(tokenizer)
    seqs = [encode(tokenizer, training_prompt(tokenizer, by_id[t.item_id], t, specials), t.completion_ids) for t in kept]
    seqs = [s for s in seqs if len(s) <= cfg.max_length]
    summary: dict[str, Any] = {
        "stage": "rft", "counts": counts, **rates, "sampled": len(trajectories), "sample_seconds": round(sample_s, 2),
        "sampling_samples_per_s": len(trajectories) / sample_s if sample_s else None,
        "sampling_tokens_per_s": generated / sample_s if sample_s else None,
    }  # fmt: skip
    if any(r["level"] is not None for r in levels):
        # A few rows per level for the summary table; every count is in levels.json.
        summary["levels"] = {f"level_{r['level']}": {k: r[k] for k in ("items", "keep_rate", "too_easy_rate")} for r in levels}
    if not seqs:
        raise ValueError(f"rft: no trajectory was kept ({counts}); the model needs a cold start or hinting")
    steps = max(1, cfg.epochs * len(seqs) // cfg.batch_size)
    summary["sft"] = train_sft(
        model, tokenizer, seqs, stage="rft", steps=steps, lr=cfg.lr, batch_size=cfg.batch_size,
        micro_batch_size=cfg.micro_batch_size, train=profile.train, lora=profile.lora, out_dir=out_dir,
        device=device, logger=logger, config=profile.model_dump(mode="json"), resume=resume, progress=progress,
    )  # fmt: skip
    return summary
