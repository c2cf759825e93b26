#!/usr/bin/env python3
"""Mutation check for the scoring rules, the paired interval and the sampling and stage rules: every
listed mutation must make its named tests fail.

Each mutation is an exact text replacement in one file. For each, the working tree (tracked
files and untracked files git does not ignore) is copied to a temporary directory, the
mutation is applied to the copy, and the named tests run there with ``PYTHONPATH`` pointing at
the copy's ``src`` -- the working tree itself is never written, so it is safe while others
edit it. Before any mutation, the named tests run once on an unmutated copy: a test that
already fails (or does not exist) cannot kill anything, and is reported as such.

Results: KILLED (the tests failed on the mutant), SURVIVED (they passed: the suite misses this
bug), ERROR (pytest could not run them on the mutant: a collection error), NO BASELINE (the
named tests already fail, or do not exist, unmutated). A mutation whose
old text is not found exactly once in its file is DRIFT (the code changed; update the table).
Exit status 0 only when every mutation is KILLED.

    python scripts/mutate.py              # all mutations
    python scripts/mutate.py --only a d   # some of them
    python scripts/mutate.py --list       # the table, without running anything
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest node ids that must fail on the mutant
    what: str


OFFICIAL = "tests/test_eval_official.py"
SCORING = "tests/test_eval_scoring.py"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "a", "src/spct/evaluate/scoring.py",
        "pref_hard.append(1.0 if min(ref_margin, tied_margin) > diff else 0.0)",
        "pref_hard.append(1.0 if max(ref_margin, tied_margin) > diff else 0.0)",
        (f"{OFFICIAL}::test_ties_hard_term_takes_the_smaller_margin",
         f"{OFFICIAL}::test_rewardbench2_equals_ratings_mode_and_process_single_model"),
        "RewardBench 2 Ties: correctness_preferred_hard takes the larger margin",
    ),
    Mutation(
        "b", "src/spct/evaluate/scoring.py",
        "pooled[key] = (ex, [a + b for a, b in zip(totals, o.totals)], used + o.used)",
        "pooled[key] = (ex, [a + b for a, b in zip(totals, o.totals)], o.used)",
        (f"{OFFICIAL}::test_ties_pools_every_judgment_into_a_mean_score",
         f"{OFFICIAL}::test_rewardbench2_equals_ratings_mode_and_process_single_model"),
        "RewardBench 2 Ties: pooling keeps the last judgment's vote count instead of summing used",
    ),
    Mutation(
        "c", "src/spct/evaluate/scoring.py",
        "return 0.0 if num == 0 else math.copysign(1.0, num)",
        "return 0.0",
        (f"{OFFICIAL}::test_ties_zero_spread_counts_as_a_full_margin",),
        "RewardBench 2 Ties: a zero spread among tied correct answers adds 0 instead of tanh(+-inf)",
    ),
    Mutation(
        "d", "src/spct/grm/rules.py",
        "    for p, s in zip(perm, presented):\n        out[p] = s\n",
        "    for i, p in enumerate(perm):\n        out[i] = presented[p]\n",
        (f"{OFFICIAL}::test_scores_map_back_to_the_original_order_through_the_judging_path",
         "tests/test_grm_rules.py::test_shuffle_maps_back"),
        "to_original maps presented scores back with the inverse permutation (invisible on pairs)",
    ),
    Mutation(
        "e", "src/spct/evaluate/harness.py",
        'res["above_baselines"] = res["ci95"] is not None and res["ci95"][0] > base["official"][best_name]',
        'res["above_baselines"] = res["ci95"] is not None and res["ci95"][1] > base["official"][best_name]',
        ("tests/test_eval_harness.py::test_above_baselines_uses_lower_bound",),
        "above_baselines compares the interval's upper bound with the best baseline",
    ),
    Mutation(
        "f", "src/spct/evaluate/harness.py",
        "by_group.setdefault(g, {}).setdefault(o.unit, []).append(o)",
        'by_group.setdefault(f"{g}:{id(o)}", {}).setdefault(o.unit, []).append(o)',
        ("tests/test_eval_harness.py::test_bootstrap_resamples_items_not_orders",),
        "the bootstrap resamples single judgments (orders) instead of whole items",
    ),
    Mutation(
        "g", "src/spct/evaluate/scoring.py",
        "correct = {u: s > 0 for u, s in sums.items()}",
        "correct = {u: s >= 0 for u, s in sums.items()}",
        (f"{OFFICIAL}::test_judgebench_equals_compute_final_metrics",),
        "JudgeBench: a pair whose orders cancel out (right + wrong) counts as right",
    ),
    Mutation(
        "h", "src/spct/evaluate/scoring.py",
        "return None if o.used <= 0 else o.verdict",
        "return o.verdict",
        (f"{OFFICIAL}::test_judgebench_one_order_right_one_tied_is_right_and_missing_differs_from_tie",),
        "JudgeBench inconsistency: a missing decision counts as a tie",
    ),
    Mutation(
        "i", "src/spct/evaluate/scoring.py",
        'out: Score = {"accuracy": _acc(outcomes, credit), "n": len(outcomes)}\n    if full:\n        sets:',
        'out: Score = {"accuracy": _mean(_acc(os, credit) for os in _by(outcomes, lambda o: "/".join(_rmb_path(o.example)[:2])).values()), "n": len(outcomes)}\n    if full:\n        sets:',
        (f"{OFFICIAL}::test_rmb_pools_pairs_instead_of_averaging_goals", f"{SCORING}::test_rmb_follows_my_run_rm"),
        "RMB: the headline averages the goal x kind sets instead of pooling as my_run_rm.py",
    ),
    Mutation(
        "j", "src/spct/evaluate/scoring.py",
        'return {1: 1.0, -1: 0.0}.get(o.verdict, 0.5)',
        'return {1: 1.0, -1: 0.0}.get(o.verdict, 0.0)',
        (f"{OFFICIAL}::test_rewardbench_equals_run_generative",),
        "RewardBench: a tie or unparsed judgment gets 0 instead of the script's 0.5",
    ),
    Mutation(
        "k", "src/spct/evaluate/scoring.py",
        '"hard": _mean(cells(lambda i, j: j > i)),',
        '"hard": _mean(cells(lambda i, j: j >= i)),',
        (f"{OFFICIAL}::test_rmbench_equals_compute_accuracy",),
        "RM-Bench: hard accuracy includes the diagonal",
    ),
    Mutation(
        "l", "src/spct/evaluate/paired.py",
        "_mean(a, drawn) - _mean(b, drawn) for drawn in",
        "_mean(a, drawn) - _mean(b, rng.choices(common, k=len(common))) for drawn in",
        ("tests/test_eval_paired.py::test_pairing_sees_a_gain_that_two_separate_intervals_cannot",),
        "paired difference: the two columns resampled independently (an unpaired interval)",
    ),
    Mutation(
        "m", "src/spct/engine/sampler.py",
        "positions = (mask.cumsum(-1) - 1).clamp(min=0)",
        "positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)",
        ("tests/test_engine_prefix.py::test_greedy_equals_unpadded_reference",),
        "shared-prefix sampler: the pads between prefix and suffix count as positions",
    ),
    Mutation(
        "n", "src/spct/engine/sampler.py",
        "ids.append(list(r[:p]) + [pad] * gap + list(r[p:]))",
        "ids.append(list(r[:p]) + list(r[p:]) + [pad] * gap)",
        ("tests/test_engine_prefix.py::test_common_prefix_and_layout",),
        "shared-prefix layout: the padding after the suffix instead of between prefix and suffix",
    ),
    Mutation(
        "o", "src/spct/train/grpo.py",
        "return sorted((with_spread + without)[:want])",
        "return sorted(list(range(len(spread)))[:want])",
        ("tests/test_train_grpo_loss.py::test_select_groups_takes_spread_first_in_sampling_order_then_fills_up",),
        "GRPO dynamic sampling: the first groups sampled are updated on, spread or not",
    ),
    Mutation(
        "p", "src/spct/train/grpo.py",
        'return int(state.get("stream_position", state["step"] * batch_size))',
        'return int(state["step"] * batch_size)',
        ("tests/test_train_grpo_loss.py::test_stream_position_is_read_back_from_the_checkpoint_and_falls_back_to_whole_batches",),
        "GRPO --resume: the saved stream position is ignored",
    ),
    Mutation(
        "q", "src/spct/train/rft.py",
        'if keep_rates(total)["keep_rate"] >= cfg.min_keep_rate or keep_rates(last)["too_easy_rate"] <= cfg.max_too_easy:',
        'if keep_rates(total)["keep_rate"] >= cfg.min_keep_rate and keep_rates(last)["too_easy_rate"] <= cfg.max_too_easy:',
        ("tests/test_train_rft.py::test_next_level_rises_only_while_items_are_too_easy_and_too_few_are_kept",),
        "RFT curriculum: a level is raised although enough was kept",
    ),
    Mutation(
        "r", "charts/spct-serving/templates/inferenceservice.yaml",
        '{{- if eq .Values.deploymentMode "RawDeployment" }}\n    # Knative refuses this pod field',
        '{{- if true }}\n    # Knative refuses this pod field',
        ("tests/test_k8s_knative.py::test_the_a100_predictor_renders_only_fields_knative_accepts",
         "tests/test_cluster_check.py::test_every_overlay_passes"),
        "serving chart: terminationGracePeriodSeconds rendered for a Serverless predictor (Knative refuses it)",
    ),
    Mutation(
        "s", "src/spct/pipeline/stages.py",
        "if nodes > 1 or procs > 1:",
        "if nodes > 1:",
        ("tests/test_pipeline_launch.py::test_a_single_node_task_trains_as_two_ranks_with_the_optimizer_state_partitioned",),
        "single-node training task: the stage runs in the task's process on one GPU, whatever the pod has",
    ),
    Mutation(
        "t", "src/spct/pipeline/trainjob.py",
        "except (Stopped, JobTimedOut) as e:",
        "except JobTimedOut as e:",
        ("tests/test_pipeline_compile.py::test_a_cancelled_or_timed_out_launcher_deletes_its_job",),
        "multi-node launcher: a cancelled run leaves its job (and GPU nodes) running",
    ),
    Mutation(
        "u", "src/spct/k8s/wiring.py",
        'and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))',
        "and True",
        ("tests/test_cluster_corpus.py::test_each_miswiring_is_refused_naming_object_and_field",),
        "cluster check: a Role rule counts for every verb (the RBAC part of the mis-wiring corpus)",
    ),
    Mutation(
        "v", "src/spct/k8s/check.py",
        "KFP_BACKEND_MIN = (2, 5)",
        "KFP_BACKEND_MIN = (2, 2)",
        ("tests/test_cluster_corpus.py::test_each_miswiring_is_refused_naming_object_and_field",),
        "cluster check: a KFP 2.2 backend accepted for a pipeline that needs 2.5",
    ),
)


def worktree_files() -> list[str]:
    """Tracked files and untracked files git does not ignore: what another engineer's checkout holds."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [f for f in out.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


def copy_tree(dest: Path, files: list[str]) -> None:
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, target)


def check_text(m: Mutation) -> str | None:
    """None when the mutation applies to the working tree's file, else why not (code drift)."""
    path = ROOT / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    n = path.read_text(encoding="utf-8").count(m.old)
    if n != 1:
        return f"old text found {n} times in {m.file} (expected exactly once): {m.old!r}"
    return None


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    # helm and kubectl (`make tools`) live in this checkout's ignored .tools/, which the copy lacks.
    env.setdefault("SPCT_TOOLS_DIR", str(Path(__file__).resolve().parents[1] / ".tools" / "bin"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    try:
        p = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return -1, f"timed out after {timeout:.0f}s\n{e.stdout or ''}"
    return p.returncode, p.stdout + p.stderr


def imports_from(copy: Path) -> bool:
    """The copy's spct is the one imported (an installed spct must not shadow PYTHONPATH)."""
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    p = subprocess.run([sys.executable, "-c", "import spct; print(spct.__file__)"], cwd=copy, env=env, capture_output=True, text=True)
    return p.returncode == 0 and Path(p.stdout.strip()).resolve().is_relative_to(copy.resolve())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutation ids")
    ap.add_argument("--list", action="store_true", help="print the table and exit")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per pytest run")
    args = ap.parse_args(argv)

    chosen = [m for m in MUTATIONS if not args.only or m.id in args.only]
    unknown = set(args.only or ()) - {m.id for m in MUTATIONS}
    if unknown:
        print(f"unknown mutation ids: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.id}  {m.file}: {m.what}\n   old: {m.old!r}\n   new: {m.new!r}\n   tests: {' '.join(m.tests)}")
        return 0

    drift = [(m, why) for m in chosen if (why := check_text(m))]
    for m, why in drift:
        print(f"DRIFT {m.id}: {why}", file=sys.stderr)
    if drift:
        print("the code changed under these mutations; update MUTATIONS in scripts/mutate.py", file=sys.stderr)
        return 2

    files = worktree_files()
    rows: list[tuple[str, str, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="spct-mutate-") as tmp:
        base = Path(tmp) / "base"
        copy_tree(base, files)
        if not imports_from(base):
            print("the copy's spct is not the one imported (an installed spct shadows PYTHONPATH?)", file=sys.stderr)
            return 2
        # The named tests must pass unmutated, or they cannot be said to kill anything: run them all once,
        # and only when that fails, per mutation to find whose tests are broken (or missing).
        all_tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        t0 = time.perf_counter()
        rc, out = run_tests(base, all_tests, args.timeout)
        print(f"baseline: {len(all_tests)} tests on the unmutated copy, exit {rc} ({time.perf_counter() - t0:.1f}s)", flush=True)
        no_baseline: dict[str, str] = {}
        if rc != 0:
            for m in chosen:
                rc_m, out_m = run_tests(base, m.tests, args.timeout)
                if rc_m != 0:
                    no_baseline[m.id] = out_m.strip().splitlines()[-1] if out_m.strip() else f"exit {rc_m}"
                    print(f"{m.id}: its tests fail unmutated: {no_baseline[m.id]}", flush=True)
        for m in chosen:
            if m.id in no_baseline:
                rows.append((m.id, m.file, "NO BASELINE", 0.0, no_baseline[m.id]))
                continue
            work = Path(tmp) / f"mutant-{m.id}"
            shutil.copytree(base, work)
            target = work / m.file
            target.write_text(target.read_text(encoding="utf-8").replace(m.old, m.new, 1), encoding="utf-8")
            t0 = time.perf_counter()
            rc, out = run_tests(work, m.tests, args.timeout)
            dt = time.perf_counter() - t0
            # pytest: 0 all passed, 1 some failed; anything else (no tests, usage error, crash) is no verdict.
            result = "KILLED" if rc == 1 else "SURVIVED" if rc == 0 else "ERROR"
            detail = ""
            if result == "ERROR":
                detail = out.strip().splitlines()[-1] if out.strip() else f"exit {rc}"
            elif result == "KILLED":
                failed = [ln.split(" ")[1] for ln in out.splitlines() if ln.startswith("FAILED ")]
                detail = failed[0].split("::", 1)[-1] if failed else ""
            rows.append((m.id, m.file, result, dt, detail))
            print(f"{m.id}: {result} ({dt:.1f}s) {m.what}" + (f" [{detail}]" if detail else ""), flush=True)
            shutil.rmtree(work, ignore_errors=True)

    print("\n| id | file | mutation | result | seconds | first failing test / error |\n|---|---|---|---|---:|---|")
    for (mid, file, result, dt, detail), m in zip(rows, chosen):
        print(f"| {mid} | {file} | {m.what} | {result} | {dt:.1f} | {detail} |")
    bad = [r for r in rows if r[2] != "KILLED"]
    print(f"\n{len(rows) - len(bad)}/{len(rows)} killed" + (f"; not killed: {', '.join(f'{r[0]} ({r[2]})' for r in bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
