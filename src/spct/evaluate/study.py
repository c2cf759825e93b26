"""The stage-by-stage study behind ``make reproduce``: what each SPCT stage and each k adds.

One chain (cold start -> RFT -> GRPO, then the meta RM on the final GRM with RFT's samples),
run with the pipeline's own stage runner, then every model on the way (the base, after cold
start, after RFT, after GRPO) evaluated on the profile's held-out set at k = 1, 2, 4, 8, with
and without the meta RM, under the same rules as ``spct eval`` (every order, official rule,
baselines, 95% intervals). Writes a table (markdown and JSON) and a plot of accuracy against k
per stage; everything is logged to MLflow under one parent run. ``resume`` keeps every stage and
evaluation a stopped study finished (a 70-minute CPU run should not start over for the last step).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STAGE_ORDER = ("base", "coldstart", "rft", "grpo")


@dataclass
class StudyResult:
    run_dir: Path
    tracking_uri: str
    run_id: str
    rows: list[dict[str, Any]]
    seconds: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)
    differences: list[dict[str, Any]] = field(default_factory=list)


def study_rows(reports: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (stage, dataset, column): the harness's own result for that column (accuracy,
    interval, paper tie-break, baselines, sizes, ...) and the dataset's parse rate."""
    return [
        {"stage": stage, "dataset": name, "column": col, "parse_rate": e.get("parse_rate"), "result": res}
        for stage, report in reports.items()
        for name, e in report["datasets"].items()
        for col, res in e["results"].items()
    ]


def render_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: the same cells as ``spct eval``'s table (:func:`spct.evaluate.report.result_row`)."""
    from spct.evaluate.report import ROW_HEADER, result_row

    head = ["stage", "dataset", "column", *ROW_HEADER, "parse"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        parse = "" if r["parse_rate"] is None else f"{100 * r['parse_rate']:.1f}"
        lines.append("| " + " | ".join([r["stage"], r["dataset"], r["column"], *result_row(r["result"]), parse]) + " |")
    return "\n".join(lines)


# The differences a reader of the study asks about, each as (label, minuend, subtrahend) with
# minuend/subtrahend = (stage, column); "@K" is the study's largest k up to 8 (the paper's Voting@8).
DIFFERENCES = (
    ("RFT - cold start (greedy)", ("rft", "greedy"), ("coldstart", "greedy")),
    ("GRPO - RFT (greedy)", ("grpo", "greedy"), ("rft", "greedy")),
    ("GRPO - cold start (greedy)", ("grpo", "greedy"), ("coldstart", "greedy")),
    ("Voting@K - greedy (GRPO model)", ("grpo", "voting@K"), ("grpo", "greedy")),
    ("MetaRM@K - Voting@K (GRPO model)", ("grpo", "metarm@K"), ("grpo", "voting@K")),
    ("Voting@K - greedy (cold-start model)", ("coldstart", "voting@K"), ("coldstart", "greedy")),
)


def study_differences(rows: Sequence[Mapping[str, Any]], ks: Sequence[int], *, seed: int = 0) -> list[dict[str, Any]]:
    """Paired bootstrap differences (:func:`spct.evaluate.paired.paired_difference`) of :data:`DIFFERENCES`
    per dataset, on the items both columns judged; a pair whose columns are missing (no meta RM, a
    benchmark without per-group credit) is left out."""
    from spct.evaluate.paired import paired_difference

    big = max([k for k in ks if k <= 8] or list(ks))
    cells = {(r["dataset"], r["stage"], r["column"]): r["result"] for r in rows}
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for label, a, b in DIFFERENCES:
            ra, rb = (cells.get((dataset, st, col.replace("@K", f"@{big}"))) for st, col in (a, b))
            if not ra or not rb or "by_group" not in ra or "by_group" not in rb:
                continue
            d = paired_difference(ra["by_group"], rb["by_group"], seed=seed)
            out.append({"dataset": dataset, "difference_of": label.replace("@K", f"@{big}"),
                        "a": [a[0], a[1].replace("@K", f"@{big}")], "b": [b[0], b[1].replace("@K", f"@{big}")],
                        "accuracy_a": ra["accuracy"], "accuracy_b": rb["accuracy"], **d})  # fmt: skip
    return out


def render_differences(diffs: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: each difference in points with its paired 95% interval and whether it clears zero."""
    lines = ["| dataset | difference | a | b | a - b (points) | paired 95% CI | distinct items | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for d in diffs:
        ci = d["ci95"] or [float("nan")] * 2
        verdict = "above 0" if d["above_zero"] else "below 0" if d["below_zero"] else "not resolved (0 inside)"
        lines.append(f"| {d['dataset']} | {d['difference_of']} | {100 * d['accuracy_a']:.1f} | {100 * d['accuracy_b']:.1f} | "
                     f"{100 * d['difference']:+.1f} | {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} | {d['groups']} | {verdict} |")
    return "\n".join(lines)


def plot_study(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Accuracy against k, one colour per stage: Voting@k solid, MetaRM@k dashed, greedy an x at k=1;
    bars are 95% intervals, the dotted line the best position-only baseline of any column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from spct.evaluate.report import error_bars

    fig, ax = plt.subplots(figsize=(7.0, 4.6), dpi=120)
    first = rows[0]["dataset"] if rows else None  # the main held-out set; other sets are in the table
    rows = [r for r in rows if r["dataset"] == first]
    stages = [s for s in STAGE_ORDER if any(r["stage"] == s for r in rows)]
    for i, stage in enumerate(stages):
        res = {r["column"]: r["result"] for r in rows if r["stage"] == stage}
        for kind, style, shift in (("voting", "-", 1.0), ("metarm", "--", 1.04)):
            pts = sorted((int(col.split("@")[1]), res[col]) for col in res if col.startswith(kind + "@"))
            if pts:
                acc = [100 * r["accuracy"] for _, r in pts]
                ax.errorbar([k * shift for k, _ in pts], acc, yerr=error_bars([r.get("ci95") for _, r in pts], acc), fmt=style,
                            marker="o", color=f"C{i}", capsize=3, label=stage if kind == "voting" else f"{stage} (MetaRM)")
        if "greedy" in res:
            acc = [100 * res["greedy"]["accuracy"]]
            ax.errorbar([0.94], acc, yerr=error_bars([res["greedy"].get("ci95")], acc), marker="x", linestyle="none",
                        color=f"C{i}", markersize=9, capsize=3)
    best = max((v for r in rows for v in (r["result"].get("baselines") or {}).values()), default=None)
    if best is not None:
        ax.axhline(100 * best, color="grey", linestyle=":", linewidth=1, label="best position or surface baseline")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (sampled critiques voted)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_study(
    profile: str,
    run_dir: str | Path,
    *,
    overrides: Sequence[str] = (),
    ks: Sequence[int] = (1, 2, 4, 8),
    docs_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    command: str = "",
    resume: bool = False,
) -> StudyResult:
    """Train the chain, evaluate every stage, write ``reproduce.md``/``reproduce.png``/``study.json``
    into ``run_dir`` (and, with ``docs_dir``, copies of ``reproduce.md``/``reproduce.png`` there).

    With ``resume``, a training stage whose ``stage.json`` (written when it finished) is in
    ``run_dir`` and an evaluation whose ``report.json`` is there are kept, not redone; the run
    folder must have been started with the same profile, overrides and ks.
    """
    from spct.config import ConfigError, load_profile
    from spct.evaluate.heldout import training_specs
    from spct.pipeline.stages import Tracking, evaluate_stage, train_stage
    from spct.registry.tracking import end_run, resolve_tracking_uri, stage_run, start_pipeline_run

    prof = load_profile(profile, list(overrides))  # fails here, before anything is written, on a bad profile
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    setup = {"profile": profile, "overrides": list(overrides), "ks": sorted(set(ks))}
    setup_file, seconds_file = run_dir / "study_setup.json", run_dir / "seconds.json"
    if resume and setup_file.is_file() and (before := json.loads(setup_file.read_text())) != setup:
        raise ConfigError(f"{run_dir} was started with {before}; --resume needs the same profile, overrides and ks, got {setup}")
    setup_file.write_text(json.dumps(setup) + "\n")
    uri = resolve_tracking_uri(tracking_uri, run_dir)
    started = datetime.now(timezone.utc)
    run_id = start_pipeline_run(uri, "spct-reproduce", f"reproduce-{started:%Y%m%d-%H%M%S}",
                                {"profile": profile, "overrides": list(overrides), "ks": list(ks), "command": command,
                                 "resume": resume})  # fmt: skip
    tracking = Tracking(uri, run_id)
    # Seconds of the steps this run finished (kept across a resume, so the total is the work's, not the
    # last sitting's). A step is kept on resume only if it is in here *and* its output marker exists:
    # markers left by an older run in the same folder are not mistaken for this run's.
    seconds: dict[str, float] = json.loads(seconds_file.read_text()) if resume and seconds_file.is_file() else {}

    def finished(key: str, marker: Path) -> bool:
        return resume and key in seconds and marker.is_file()

    def record(key: str, t0: float) -> None:
        seconds[key] = round(time.perf_counter() - t0, 1)
        seconds_file.write_text(json.dumps(seconds) + "\n")

    try:
        models = {"base": prof.model.spec}
        for kind, start in (("coldstart", "base"), ("rft", "coldstart"), ("grpo", "rft")):
            out = run_dir / kind
            if not finished(kind, out / "stage.json"):
                t0 = time.perf_counter()
                train_stage(kind, profile, overrides, models[start], out, tracking)
                record(kind, t0)
            models[kind] = str(out / "model")
        if not finished("metarm", run_dir / "metarm" / "stage.json"):
            t0 = time.perf_counter()
            samples = run_dir / "rft" / "samples.jsonl"
            train_stage("metarm", profile, overrides, models["grpo"], run_dir / "metarm", tracking,
                        samples=str(samples) if samples.is_file() else None)
            record("metarm", t0)

        eval_sets = [*overrides, f"eval.ks={json.dumps(sorted(set(ks)))}"]
        for stage in STAGE_ORDER:
            out = run_dir / "eval" / stage
            if not finished(f"eval_{stage}", out / "report.json"):
                t0 = time.perf_counter()
                # The study trains on the profile's own data (no curation step): that is what is held out from.
                evaluate_stage(Path(models[stage]), run_dir / "metarm" / "model", profile, eval_sets, out, tracking,
                               train_data=training_specs(prof))
                record(f"eval_{stage}", t0)
        reports = {stage: json.loads((run_dir / "eval" / stage / "report.json").read_text()) for stage in STAGE_ORDER}
        rows = study_rows(reports)
        seconds["total"] = round(sum(seconds.values()), 1)
        result = StudyResult(run_dir, uri, run_id, rows, seconds, differences=study_differences(rows, sorted(set(ks))))
        result.files = write_study(result, prof, command, started, docs_dir)
        with stage_run(uri, run_id, "study") as log:
            for r in rows:
                key, res = f"{r['stage']}/{r['dataset']}/{r['column']}".replace("@", "_at_"), r["result"]
                ci = res.get("ci95") or [float("nan")] * 2
                log.log_metrics({key: res["accuracy"], f"{key}/ci95_low": ci[0], f"{key}/ci95_high": ci[1]}, step=0)
            for d in result.differences:
                key = f"diff/{d['dataset']}/{d['a'][0]}_{d['a'][1]}-{d['b'][0]}_{d['b'][1]}".replace("@", "_at_")
                log.log_metrics({key: d["difference"], f"{key}/ci95_low": d["ci95"][0], f"{key}/ci95_high": d["ci95"][1]},
                                step=0)
            log.log_metrics({f"seconds/{k}": v for k, v in seconds.items()}, step=0)
            for f in result.files.values():
                log.log_artifact(Path(f))
    except BaseException:
        end_run(uri, run_id, "FAILED")
        raise
    end_run(uri, run_id)
    return result


def write_study(result: StudyResult, prof: Any, command: str, started: datetime, docs_dir: str | Path | None) -> dict[str, str]:
    """The table and the plot, in the run folder and (``docs_dir``) where the docs link them."""
    load = os.getloadavg()
    eval_data = ", ".join(f"`{d}`" for d in prof.eval.data)
    body = "\n".join([
        f"# The SPCT chain stage by stage ({prof.name} profile)", "",
        f"Run {started:%Y-%m-%d %H:%M} UTC, {result.seconds['total'] / 60:.0f} min on {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}; load average at the end {load[0]:.1f}); command: `{command}`.", "",
        f"Model `{prof.model.spec}`; held-out items {eval_data} (limit {prof.eval.limit}), checked disjoint from every "
        "training set; greedy judges every order of the responses; Voting@k and MetaRM@k (the meta RM keeps eval.k_meta "
        f"of k, default k/2; here {prof.eval.k_meta or 'k/2'}) "
        "share one draw of the largest k; 95% bootstrap intervals over distinct items (copies drawn together); "
        "chance / first slot / last slot are position-only judges replayed on the same items and orders, response-only "
        "/ longest / shortest surface judges that read only the responses; `above baselines` only when the whole "
        "interval clears the best of them.", "",
        render_table(result.rows), "",
        "## Differences, paired", "",
        "Each difference is taken item for item on the same held-out items (a paired bootstrap over distinct "
        "items, 2000 resamples): two models' separate intervals overlap long before their difference is in doubt. "
        "A difference counts only when its whole interval is above (or below) zero.", "",
        render_differences(result.differences) if result.differences else "(no pair of columns to difference)", "",
        "![accuracy against k per stage](reproduce.png)", "",
        "Seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in result.seconds.items()), "",
        f"MLflow: `mlflow ui --backend-store-uri {result.tracking_uri}` (experiment `spct-reproduce`, run `{result.run_id}`).",
    ]) + "\n"  # fmt: skip
    md, png = result.run_dir / "reproduce.md", result.run_dir / "reproduce.png"
    md.write_text(body)
    plot_study(result.rows, png, f"{prof.model.spec}: accuracy vs k per stage (x = greedy, every order; bars = 95% CI)")
    files = {"reproduce.md": str(md), "reproduce.png": str(png)}
    if docs_dir:
        # The same two files where the docs link them: copied, not rendered a second time.
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        for f in (md, png):
            files[f"docs/{f.name}"] = str(shutil.copy2(f, Path(docs_dir) / f.name))
    (result.run_dir / "study.json").write_text(json.dumps({"rows": result.rows, "differences": result.differences, "seconds": result.seconds}, indent=2) + "\n")
    files["study.json"] = str(result.run_dir / "study.json")
    return files
