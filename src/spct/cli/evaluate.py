"""``spct eval`` (benchmarks, inference-time scaling curves) and ``spct judge`` (one query)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from spct.cli.app import app

console = Console()


def _fail(message: str) -> NoReturn:
    # One line, no traceback: bad input is the user's to fix, not a crash.
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def parse_ks(text: str) -> list[int]:
    """``"1,2,4,8"`` -> [1, 2, 4, 8]."""
    try:
        ks = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ValueError(f"--k {text!r}: expected comma-separated positive integers, e.g. 1,2,4,8") from None
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"--k {text!r}: expected comma-separated positive integers, e.g. 1,2,4,8")
    return sorted(set(ks))


ENGINE_HELP = ("Where generation runs: local (default: the model loaded here) or openai:URL (a vLLM, SGLang, KServe or "
               "spct server's OpenAI API; prompts are rendered here with --model's tokenizer). $SPCT_API_TOKEN or "
               "$OPENAI_API_KEY authenticates.")


def load_engine(prof: Any, engine: str | None) -> Any:
    """The profile's model here, or an OpenAI-compatible server rendering with the model's tokenizer."""
    from spct.engine import ModelNotAvailable, open_engine

    spec = engine or "local"
    if spec != "local" and not spec.startswith("openai:"):
        _fail(f"--engine {spec!r}: expected local or openai:URL (e.g. openai:http://127.0.0.1:8080/v1)")
    try:
        if spec == "local":
            return open_engine(prof.model.spec, dtype=prof.model.dtype, device=prof.model.device)
        return open_engine(spec, tokenizer=prof.model.spec)
    except (ModelNotAvailable, OSError, ValueError) as e:
        _fail(f"cannot load model {prof.model.spec!r}: {e}" if spec == "local" else f"--engine {spec}: {e}")


def print_table(table: Table) -> None:
    """Print a wide table whole: piped output (CI logs, ``make demo | tee``) has no width to fit to."""
    (console if console.is_terminal else Console(width=200)).print(table)


def results_table(report: dict[str, Any], title: str | None = None) -> Table:
    """One row per dataset and column: the official accuracy with its interval, the paper's
    tie-break, and the position and surface baselines on the same items (report.md has the same rows)."""
    from spct.evaluate.report import ROW_HEADER, columns, result_row

    cols = columns(report)
    t = Table(title=title or f"spct eval: {report['model']} (accuracy %, official rules)")
    for c in ["dataset", "column", *ROW_HEADER, "parse"]:
        t.add_column(c, justify="left" if c in ("dataset", "column") else "right", no_wrap=True)
    for name, e in report["datasets"].items():
        for c in cols:
            if c in e.get("results", {}):
                parse = e.get("greedy_parse_rate") if c == "greedy" else e.get("parse_rate")
                t.add_row(name, c, *result_row(e["results"][c]), "" if parse is None else f"{100 * parse:.0f}%")
    return t


def print_results(report: dict[str, Any], title: str | None = None) -> None:
    """The table, then per dataset how greedy verdicts depend on the order and whether items are held out."""
    from spct.evaluate.report import data_notes, greedy_notes, heldout_note

    print_table(results_table(report, title))
    for name, e in report["datasets"].items():
        if "greedy" in e.get("results", {}):
            console.print(f"{name}: {greedy_notes(e['results']['greedy'])}", highlight=False, soft_wrap=True)
        console.print(f"{name}: {data_notes(e)}", highlight=False, soft_wrap=True)
        console.print(f"{name}: held out from training: {heldout_note(e)}", highlight=False, soft_wrap=True)
        for label, d in (e.get("differences") or {}).items():
            lo, hi = d["ci95"]
            console.print(f"{name}: {label}: {100 * d['difference']:+.1f} points, paired 95% CI {100 * lo:+.1f} to "
                          f"{100 * hi:+.1f} ({d['groups']} distinct items)", highlight=False, soft_wrap=True)


@app.command("eval")
def eval_command(
    out: Path = typer.Option(..., "--out", help="Report folder (created): report.json, report.md, scaling.png, samples.jsonl."),
    profile: str = typer.Option("tiny", "--profile", help="tiny | demo | a100 | path to a profile YAML."),
    model: str | None = typer.Option(None, "--model", help="Model spec (overrides the profile's model.spec)."),
    data: list[str] | None = typer.Option(None, "--data", help="Dataset path, builtin:NAME or reasoning-gym:TASKS?...; repeat for several."),
    fmt: str | None = typer.Option(None, "--format", help="Force the data format for every --data."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records (counted in the report) instead of failing."),
    k: str | None = typer.Option(None, "--k", help="Voting@k values, e.g. 1,2,4,8 (one draw of the largest)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Items per dataset (whole groups: an RM-Bench prompt's 9 pairs, a JudgeBench pair's 2 orders)."),
    no_greedy: bool = typer.Option(False, "--no-greedy", help="Skip the greedy (temperature 0) pass."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed"),
    meta_rm: Path | None = typer.Option(None, "--meta-rm", help="A trained meta RM folder (spct metarm's model/): adds MetaRM@k columns."),
    k_meta: int | None = typer.Option(None, "--k-meta", min=1, help="MetaRM@k keeps this many of k (default k/2; needs --meta-rm)."),
    train_data: list[str] | None = typer.Option(None, "--train-data", help="The data the model trained on (e.g. a curated train.parquet): evaluation items must not be in it, and it fits the response-only baseline (default: the profile's training sections' data); repeatable."),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help="Evaluate even if items are shared with the training data (the report says so)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Profile override key.sub=value; repeatable."),
    engine: str | None = typer.Option(None, "--engine", envvar="SPCT_ENGINE", help=ENGINE_HELP),
    reference: str | None = typer.Option(None, "--reference", help="A second model spec (e.g. the cold start the GRM was trained from) judged greedy on the same items: a `<label>_greedy` column and the paired difference greedy - it."),
    reference_label: str = typer.Option("reference", "--reference-label", help="Name of the --reference column (letters, digits, _)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Evaluate a GRM: greedy in every order, Voting@k, MetaRM@k; official rules, baselines, 95% intervals."""
    from dataclasses import replace

    from spct.config import ConfigError, load_profile
    from spct.evaluate.harness import EvalSettings

    sets = list(overrides or [])
    if model:
        sets.append(f"model.spec={model}")
    try:
        prof = load_profile(profile, sets)
        settings = EvalSettings.from_profile(prof)
        if k is not None:
            settings.ks = parse_ks(k)
        if limit is not None:
            settings.limit = limit
        if no_greedy:
            settings.greedy = False
        sampling = {"temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
        settings.sampling = replace(settings.sampling, **{key: v for key, v in sampling.items() if v is not None})
        if k_meta is not None:
            settings.k_meta = k_meta
        settings.__post_init__()
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    meta_path = meta_rm or (Path(prof.eval.meta_rm) if prof.eval.meta_rm else None)
    if k_meta is not None and meta_path is None:
        _fail("--k-meta needs a meta RM: pass --meta-rm PATH (or set eval.meta_rm in the profile)")

    datasets, info = _load_datasets(data or prof.eval.data, fmt, skip_bad)
    from spct.evaluate.harness import take

    datasets = {name: take(exs, settings.limit) for name, exs in datasets.items()}  # check what is evaluated
    train = _check_heldout(datasets, info, train_data or None, prof, allow_overlap)
    meta = None
    if meta_path is not None:
        from spct.grm.meta import MetaRMError, load_meta_rm

        try:
            meta = load_meta_rm(meta_path, device="cpu" if prof.model.device == "auto" else prof.model.device)
        except (MetaRMError, OSError) as e:
            _fail(f"--meta-rm: {e}")

    from spct.evaluate.harness import evaluate

    ref = None
    if reference is not None:
        import re

        if not re.fullmatch(r"[A-Za-z0-9_]+", reference_label):
            _fail(f"--reference-label {reference_label!r}: use letters, digits and _ only (it names a report column)")
        from spct.engine import Engine, ModelNotAvailable

        try:
            ref = (reference_label, Engine.load(reference, dtype=prof.model.dtype, device=prof.model.device))
        except (ModelNotAvailable, OSError, ValueError) as e:
            _fail(f"--reference {reference}: {e}")
    gen = load_engine(prof, engine)
    remote = str(getattr(gen, "name", "")).startswith("openai:")
    model_name = f"{prof.model.spec} via {gen.name}" if remote else prof.model.spec
    report = evaluate(gen, datasets, settings, meta_rm=meta, out_dir=out, progress=progress, model=model_name, data_info=info,
                      train=train, reference=ref)
    print_results(report)
    console.print(f"report: {out / 'report.md'}")


def _check_heldout(
    datasets: dict[str, list[Any]], info: dict[str, dict[str, Any]], specs: list[str] | None, prof: Any, allow: bool
) -> list[Any]:
    """Refuse (one line naming the items) to evaluate items the model was trained on; returns the
    training items (they also fit the response-only baseline)."""
    from spct.evaluate.heldout import OverlapError, check_heldout, load_training_sets, training_specs

    try:
        train = load_training_sets(specs if specs is not None else training_specs(prof))
        checked = check_heldout(datasets, train, allow=allow)
    except (OverlapError, ValueError) as e:
        _fail(str(e))
    for name, h in checked.items():
        info[name]["heldout"] = h
        if h["overlapping"]:
            console.print(f"[yellow]warning:[/yellow] {name}: {len(h['overlapping'])} items are also training items "
                          "(--allow-overlap): its figures are not held-out figures", highlight=False)  # fmt: skip
    return [ex for exs in train.values() for ex in exs]


def _load_datasets(
    specs: list[str], fmt: str | None, skip_bad: bool
) -> tuple[dict[str, list[Any]], dict[str, dict[str, Any]]]:
    from spct.data import load
    from spct.evaluate.harness import dataset_name

    taken: set[str] = set()
    datasets, info = {}, {}
    for spec in specs:
        try:
            res = load(spec, format=fmt, skip_bad=skip_bad)
        except (ValueError, OSError) as e:
            _fail(f"{spec}: {e}" + ("" if skip_bad else " (--skip-bad skips such records)"))
        if not res.examples:
            _fail(f"{spec}: no examples")
        name = dataset_name(spec, taken)
        datasets[name] = res.examples
        info[name] = {"path": spec, "format": fmt, "loaded": len(res.examples), "skipped": res.skipped.count}
        if res.skipped.count:
            console.print(f"{spec}: skipped {res.skipped.count} bad records {res.skipped.by_reason()}", highlight=False)
    return datasets, info


@app.command("judge")
def judge_command(
    prompt: str = typer.Option(..., "--prompt", help="The user's message."),
    response: list[str] = typer.Option(..., "--response", help="A candidate response; repeat for each."),
    model: str | None = typer.Option(None, "--model", help="Model spec (default: the profile's)."),
    profile: str = typer.Option("tiny", "--profile"),
    k: int = typer.Option(1, "--k", min=1, help="Sampled critiques to vote over."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="Sampling temperature (default: the profile's; 0 = greedy)."),
    seed: int | None = typer.Option(None, "--seed"),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    engine: str | None = typer.Option(None, "--engine", envvar="SPCT_ENGINE", help=ENGINE_HELP),
) -> None:
    """Judge responses to one prompt: each sample's principles, critique and scores, then the vote."""
    from spct.config import ConfigError, load_profile

    try:
        prof = load_profile(profile, [f"model.spec={model}"] if model else [])
    except ConfigError as e:
        _fail(str(e))
    from spct.grm.judge import JudgeItem, judge
    from spct.grm.parse import Judgment
    from spct.types import user

    given = {"temperature": temperature, "max_new_tokens": max_new_tokens, "seed": seed}
    params = prof.sampling.params(**{key: v for key, v in given.items() if v is not None})
    gen = load_engine(prof, engine)
    (judged,) = judge(gen, [JudgeItem([user(prompt)], list(response), k=k)], params)
    verdict, samples = judged.verdict, judged.samples

    rows = []
    for j, smp in enumerate(samples):
        row: dict[str, Any] = {"sample": j, "perm": smp.perm, "text": smp.text, "scores": smp.scores}
        if isinstance(smp.result, Judgment):
            row["principles"] = [{"text": p.text, "weight": p.weight} for p in smp.result.principles]
            row["critique"] = smp.result.critique
        else:
            row["parse_failure"] = {"reason": smp.result.reason, "detail": smp.result.detail}
        rows.append(row)
    result = {
        "model": prof.model.spec, "samples": rows, "totals": verdict.totals, "best": verdict.best,
        "tied": verdict.tied, "tie": len(verdict.tied) > 1, "used": verdict.used, "failed": verdict.failed,
    }  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    for row in rows:
        console.rule(f"sample {row['sample']} (responses shown in order {[p + 1 for p in row['perm']]})")
        if "parse_failure" in row:
            console.print(f"[yellow]no scores[/yellow] ({row['parse_failure']['reason']}: {row['parse_failure']['detail']})", highlight=False)
            console.print(row["text"], markup=False, highlight=False)
            continue
        for p in row["principles"]:
            console.print(f"  principle: {p['text']}" + (f" ({p['weight']:g}%)" if p["weight"] is not None else ""), markup=False)
        console.print(f"critique: {row['critique']}", markup=False, highlight=False)
        console.print(f"scores: {row['scores']}")
    console.rule("vote")
    console.print(f"totals: {verdict.totals} (from {verdict.used} parsed, {verdict.failed} unparsed samples)")
    tie = f" (tie between responses {[i + 1 for i in verdict.tied]}, broken at random)" if len(verdict.tied) > 1 else ""
    console.print(f"best: response {verdict.best + 1}{tie}")


@app.command("reproduce")
def reproduce_command(
    profile: str = typer.Option("reproduce", "--profile", help="tiny | demo | reproduce | path to a profile YAML."),
    run_dir: Path = typer.Option(Path("runs/reproduce"), "--run-dir", help="Models, reports and the MLflow store."),
    docs: Path | None = typer.Option(None, "--docs", help="Also write reproduce.md and reproduce.png here (e.g. docs)."),
    k: str = typer.Option("1,2,4,8", "--k", help="Voting@k / MetaRM@k values."),
    sets: list[str] = typer.Option([], "--set", help="Profile override key.sub=value; repeatable."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
                                            help="Default: a SQLite store in RUN_DIR/mlflow."),
    resume: bool = typer.Option(False, "--resume", help="Keep the stages and evaluations RUN_DIR already finished "
                                                        "(same profile, --set and --k)."),
) -> None:
    """The chain stage by stage: base, cold start, RFT, GRPO, each at k = 1..8 with and without the meta RM."""
    import shlex
    import sys

    from spct.config import ConfigError
    from spct.evaluate.study import render_table, run_study

    try:
        ks = parse_ks(k)
    except ValueError as e:
        _fail(str(e))
    command = "spct " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    try:
        # run_study reads the profile before any work, so a bad profile or override fails at once.
        result = run_study(profile, run_dir, overrides=sets, ks=ks, docs_dir=docs, tracking_uri=tracking_uri, command=command,
                           resume=resume)
    except ConfigError as e:
        _fail(str(e))
    console.print(render_table(result.rows), highlight=False, soft_wrap=True)
    for name, path in result.files.items():
        console.print(f"wrote {path}", highlight=False)
    console.print(f"{result.seconds['total'] / 60:.1f} min; MLflow: mlflow ui --backend-store-uri {result.tracking_uri}",
                  highlight=False)
