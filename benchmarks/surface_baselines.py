"""How far a judge that never reads the question gets on the reasoning-gym items.

    .venv/bin/python benchmarks/surface_baselines.py                     # every supported task, seed 0
    .venv/bin/python benchmarks/surface_baselines.py --seeds 0,1,2,3,4   # five draws, outcomes pooled
    .venv/bin/python benchmarks/surface_baselines.py --tasks gcd,lcm --json out.json

For each task and seed: 200 ``split=train`` items fit ``spct.evaluate.surface``'s response-only
classifier (n-gram logistic regression on each response alone, never the question), which then
rates 64 ``split=heldout`` items; beside it the longest- and shortest-response baselines. An
item is right when its gold response gets the strictly highest score: a tie is a miss, so a
judge that cannot tell two responses apart scores below chance (1/responses) rather than at it,
and the ``tied`` column says how often that happened. A last row fits one classifier on every
task's training items. A task whose level has too few distinct held-out questions runs at the
next level up, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

JUDGES = ("response_only", "longest", "shortest")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p, d = k / n, 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def outcome(scores: Sequence[float], best: int) -> str:
    top = max(scores)
    if scores[best] != top:
        return "wrong"
    return "right" if sum(s == top for s in scores) == 1 else "tied"


def generate(task: str, n: int, split: str, level: int, seed: int, responses: int) -> tuple[list, int]:
    """Items of ``task`` at ``level`` or, where that level has too few distinct questions, the next one up."""
    from spct.data.reasoning_gym import generate_reasoning_gym, max_level

    while True:
        try:
            return generate_reasoning_gym([task], n, seed=seed, split=split, level=level, n_responses=responses), level
        except ValueError as e:
            if "too few distinct questions" not in str(e) or level >= max_level(task):
                raise
            level += 1


class Tally:
    """Outcomes per judge, overall and per mistake type."""

    def __init__(self) -> None:
        self.all: dict[str, list[str]] = defaultdict(list)
        self.by_type: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

    def add(self, model, ex) -> None:
        from spct.evaluate.surface import length_scores

        scores = {"response_only": model.scores(ex), "longest": length_scores(ex, True), "shortest": length_scores(ex, False)}
        for judge, s in scores.items():
            o = outcome(s, ex.best)
            self.all[judge].append(o)
            self.by_type[ex.meta["mistake"]][judge].append(o)

    @staticmethod
    def pct(outcomes: list[str], what: str = "right") -> float:
        return 100 * outcomes.count(what) / len(outcomes) if outcomes else math.nan

    def row(self, outcomes: dict[str, list[str]]) -> dict[str, float]:
        ro = outcomes["response_only"]
        lo, hi = wilson(ro.count("right"), len(ro))
        return {"n": len(ro), **{j: self.pct(outcomes[j]) for j in JUDGES},
                "response_only_tied": self.pct(ro, "tied"), "same_length": self.pct(outcomes["longest"], "tied"),
                "ci95": [100 * lo, 100 * hi]}


def main() -> None:
    from spct.data.reasoning_gym import TASKS
    from spct.evaluate.surface import fit_response_only

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names (default: every supported task)")
    ap.add_argument("--train-n", type=int, default=200)
    ap.add_argument("--heldout-n", type=int, default=64)
    ap.add_argument("--level", type=int, default=0)
    ap.add_argument("--seeds", default="0", help="comma-separated; each seed draws its own items and fits its own classifier")
    ap.add_argument("--responses", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    t0 = time.time()
    seeds = [int(s) for s in args.seeds.split(",")]
    results, pooled = {}, Tally()
    by_seed: dict[int, tuple[list, list]] = {s: ([], []) for s in seeds}
    for task in args.tasks.split(","):
        tally, n_train, levels = Tally(), 0, set()
        for seed in seeds:
            held, level = generate(task, args.heldout_n, "heldout", args.level, seed, args.responses)
            train, _ = generate(task, args.train_n, "train", level, seed, args.responses)
            by_seed[seed][0].extend(train)
            by_seed[seed][1].extend(held)
            n_train, levels = n_train + len(train), levels | {level}
            model = fit_response_only(train, seed=seed)
            for ex in held:
                tally.add(model, ex)
        results[task] = {"level": sorted(levels), "train": n_train, **tally.row(tally.all),
                         "by_mistake": {t: tally.row(v) for t, v in sorted(tally.by_type.items())}}
    # One classifier per seed over every task's training items: what a mixed evaluation set faces.
    n_train = 0
    for seed, (train, held) in by_seed.items():
        model = fit_response_only(train, seed=seed)
        n_train += len(train)
        for ex in held:
            pooled.add(model, ex)
    results["all tasks (one classifier)"] = {"level": [], "train": n_train, **pooled.row(pooled.all), "by_mistake": {}}

    f = lambda x: "-" if math.isnan(x) else f"{x:.1f}"  # noqa: E731
    print(f"Held-out accuracy (%) of judges that see only the responses: {args.responses} responses per item "
          f"(chance {100 / args.responses:.1f}), a tie is a miss; seeds {args.seeds}, {args.train_n} train / "
          f"{args.heldout_n} held-out items per task and seed; {time.time() - t0:.0f} s.\n")
    print("| task | level | train / held-out | response-only | 95% CI | tied | longest | shortest | same length |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for task, r in results.items():
        lv = ",".join(map(str, r["level"])) or "-"
        print(f"| {task} | {lv} | {r['train']} / {r['n']} | **{f(r['response_only'])}** | {r['ci95'][0]:.0f}-{r['ci95'][1]:.0f} | "
              f"{f(r['response_only_tied'])} | {f(r['longest'])} | {f(r['shortest'])} | {f(r['same_length'])} |")
    print("\n| task | mistake | held-out | response-only | tied | longest | shortest |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for task, r in results.items():
        for t, m in r["by_mistake"].items():
            print(f"| {task} | {t} | {m['n']} | {f(m['response_only'])} | {f(m['response_only_tied'])} | "
                  f"{f(m['longest'])} | {f(m['shortest'])} |")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2))


if __name__ == "__main__":
    main()
