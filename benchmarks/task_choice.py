"""Which reasoning-gym tasks the demo should train and judge on, by measurement.

    .venv/bin/python benchmarks/task_choice.py --out runs/task_choice            # every supported task
    .venv/bin/python benchmarks/task_choice.py --out runs/task_choice --tasks gcd,lcm --steps 40
    .venv/bin/python benchmarks/task_choice.py --out runs/task_choice --skip-train   # re-read a finished run

One cold start of the demo model (the demo profile's recipe: reference template, decision tokens
weighted, both orders, LoRA) on ``split=train`` items of every candidate task together, then the
untrained and the cold-started model judge the same ``split=heldout`` items, greedy in both
orders plus one sample per item at the profile's temperature. Per task the table gives both
models' accuracy (official rule: a tie or no parse is a miss), the response-only classifier
(fitted on the cold start's own training items, never the question) and the longest/shortest
baselines on the same items. A task is a good demo task when the cold-started model sits in the
middle: well above its surface baselines (it reads the question) and well below 100% (RFT, GRPO
and voting have something left to fix).

Every step is the ``spct`` CLI a user would run; the commands are printed and their outputs
(cold start model, both evaluations' report.json) stay under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path


def sh(cmd: list[str]) -> float:
    print("$", shlex.join(cmd), flush=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def per_task(report: dict, column: str) -> dict[str, dict]:
    """Per task (category): accuracy, judgments, response-only/longest/shortest from ``report``."""
    ds = next(iter(report["datasets"].values()))
    res = ds["results"][column]
    cats = res.get("categories", {})
    surf = res.get("baseline_categories", {}).get("response_only", {})
    return {c: {"accuracy": a, "response_only": surf.get(c)} for c, a in cats.items()}


def reference_answers(samples: Path, heldout: str) -> dict[str, tuple[float, float]]:
    """Per task, from the greedy critiques in ``samples`` (a samples.jsonl): the share whose
    ``Reference answer:`` line is the gold answer, and the share where it is the first presented
    response's answer instead (copied, not computed). A reference-template judge checks by
    computing the answer itself, so this is what says whether a task is within its reach."""
    import re

    from spct.data import load

    items = {ex.id: ex for ex in load(heldout).examples}
    counts: dict[str, list[int]] = {}
    for line in samples.read_text().splitlines():
        rec = json.loads(line)
        if rec["mode"] != "greedy":
            continue
        ex = items[rec["example_id"]]
        m = re.search(r"Reference answer: (.*?)\.?\n", rec["text"])
        ref = m.group(1).strip() if m else None
        first = ex.meta["response_meta"][rec["perm"][0]]["answer"]
        c = counts.setdefault(ex.category, [0, 0, 0])
        c[0] += 1
        c[1] += ref == str(ex.meta["answer"])
        c[2] += ref == first
    return {t: (gold / n, copied / n) for t, (n, gold, copied) in counts.items()}


def main() -> None:
    from spct.data.reasoning_gym import TASKS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/task_choice"))
    ap.add_argument("--tasks", default=",".join(TASKS), help="candidate tasks, comma-separated")
    ap.add_argument("--train-per-task", type=int, default=24)
    ap.add_argument("--eval-per-task", type=int, default=12)
    ap.add_argument("--level", type=int, default=0)
    ap.add_argument("--steps", type=int, default=100, help="cold-start steps (x the profile's batch of 4)")
    ap.add_argument("--skip-train", action="store_true", help="read the reports of a finished run")
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    spct = str(Path(sys.executable).with_name("spct"))
    opts = f"seed={{}}&level={args.level}&split={{}}"
    train = f"reasoning-gym:{','.join(tasks)}?n={args.train_per_task * len(tasks)}&" + opts.format(1, "train")
    heldout = f"reasoning-gym:{','.join(tasks)}?n={args.eval_per_task * len(tasks)}&" + opts.format(0, "heldout")
    out = args.out
    cs = out / "coldstart"
    secs: dict[str, float] = {}
    if not args.skip_train:
        secs["coldstart"] = sh([spct, "coldstart", "--profile", "demo", "--out", str(cs), "--no-progress",
                                "--set", f"coldstart.data={train}", "--set", f"coldstart.steps={args.steps}"])  # fmt: skip
        for name, model in (("untrained", "demo"), ("coldstart", str(cs / "model"))):
            secs[f"eval {name}"] = sh([spct, "eval", "--profile", "demo", "--model", model, "--data", heldout,
                                       "--limit", str(args.eval_per_task * len(tasks)), "--k", "1",
                                       "--train-data", train, "--out", str(out / f"eval_{name}"), "--no-progress"])  # fmt: skip
    reports = {n: json.loads((out / f"eval_{n}" / "report.json").read_text()) for n in ("untrained", "coldstart")}
    n_items = args.eval_per_task
    print(f"\ntrain: {train}\nheld-out: {heldout}\n" + "".join(f"{k}: {v:.0f} s\n" for k, v in secs.items()))
    rows = []
    refs = reference_answers(out / "eval_coldstart" / "samples.jsonl", heldout)
    for t in tasks:
        g0 = per_task(reports["untrained"], "greedy").get(t, {})
        g1 = per_task(reports["coldstart"], "greedy").get(t, {})
        v1 = per_task(reports["coldstart"], "voting@1").get(t, {})
        rows.append((t, g0.get("accuracy", math.nan), g1.get("accuracy", math.nan), v1.get("accuracy", math.nan),
                     g1.get("response_only"), *refs.get(t, (math.nan, math.nan))))
    # Per task there are only eval_per_task items: a screen for where to look, not a result. The whole
    # set's interval (by distinct content) and all six baselines are in each eval's report.md.
    print(f"| task | untrained greedy | cold start greedy (both orders, {n_items} items, {2 * n_items} judgments) | "
          "cold start Voting@1 | response-only | reference = gold | reference = response 1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for t, a0, a1, v, ro, gold, copied in sorted(rows, key=lambda r: -r[5]):
        ro_s = "" if ro is None else f"{100 * ro:.1f}"
        print(f"| {t} | {100 * a0:.1f} | {100 * a1:.1f} | {100 * v:.1f} | {ro_s} | {100 * gold:.0f}% | {100 * copied:.0f}% |")
    (out / "task_choice.json").write_text(json.dumps({"train": train, "heldout": heldout, "seconds": secs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
