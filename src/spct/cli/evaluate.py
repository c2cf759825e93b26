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


def dataset_name(spec: str, taken: set[str]) -> str:
    """A short unique name for a data path: its file/folder stem, or the builtin's name.

    A builtin's options (``?n=80&seed=0...``) stay out of the name, which heads a table column and
    prefixes MLflow metric keys; the whole spec is kept as the dataset's ``path`` in the report.
    """
    if spec.startswith("builtin:"):
        base = spec.removeprefix("builtin:").partition("?")[0]
    else:
        base = Path(spec.rstrip("/")).name.split(".")[0]
    name, i = base or spec, 2
    while name in taken:
        name, i = f"{base}-{i}", i + 1
    taken.add(name)
    return name


def print_table(table: Table) -> None:
    """Print a wide table whole: piped output (CI logs, ``make demo | tee``) has no width to fit to."""
    (console if console.is_terminal else Console(width=200)).print(table)


def _results_table(report: dict[str, Any]) -> Table:
    from spct.evaluate.report import columns

    cols = columns(report)
    t = Table(title=f"spct eval: {report['model']} (accuracy %)")
    for c in ["dataset", "benchmark", *cols, "parse", "n", "tokens", "s"]:
        t.add_column(c, justify="left" if c in ("dataset", "benchmark") else "right", no_wrap=True)
    for name, e in report["datasets"].items():
        cells = [f"{100 * e[c]:.1f}" if c in e else "" for c in cols]
        t.add_row(name, e["benchmark"], *cells, f"{100 * e['parse_rate']:.0f}%", str(e["n"]),
                  f"{e['mean_generated_tokens']:.0f}", f"{e['seconds']:.1f}")  # fmt: skip
    return t


@app.command("eval")
def eval_command(
    out: Path = typer.Option(..., "--out", help="Report folder (created): report.json, report.md, scaling.png, samples.jsonl."),
    profile: str = typer.Option("tiny", "--profile", help="tiny | demo | a100 | path to a profile YAML."),
    model: str | None = typer.Option(None, "--model", help="Model spec (overrides the profile's model.spec)."),
    data: list[str] | None = typer.Option(None, "--data", help="Dataset path or builtin:NAME; repeat for several."),
    fmt: str | None = typer.Option(None, "--format", help="Force the data format for every --data."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records (counted in the report) instead of failing."),
    k: str | None = typer.Option(None, "--k", help="Voting@k values, e.g. 1,2,4,8 (one draw of the largest)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Items per dataset (whole groups: an RM-Bench prompt's 9 pairs, a JudgeBench pair's 2 orders)."),
    no_greedy: bool = typer.Option(False, "--no-greedy", help="Skip the greedy (temperature 0) pass."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0),
    max_new_tokens: int | None = typer.Option(None, "--max-new-tokens", min=1),
    seed: int | None = typer.Option(None, "--seed"),
    k_meta: int | None = typer.Option(None, "--k-meta", min=1, help="MetaRM@k keeps this many (needs a meta RM)."),
    overrides: list[str] | None = typer.Option(None, "--set", help="Profile override key.sub=value; repeatable."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Evaluate a GRM: greedy and Voting@k accuracy on each dataset, scored by the benchmark's own rule."""
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
        if temperature is not None:
            settings.temperature = temperature
        if max_new_tokens is not None:
            settings.max_new_tokens = max_new_tokens
        if seed is not None:
            settings.seed = seed
        if k_meta is not None:
            settings.k_meta = k_meta
        settings.__post_init__()
    except (ConfigError, ValueError) as e:
        _fail(str(e))
    if prof.eval.meta_rm:
        _fail(f"profile {profile!r} sets eval.meta_rm, but spct has no meta RM loader yet; unset it")

    datasets, info = _load_datasets(data or prof.eval.data, fmt, skip_bad)

    from spct.engine import Engine, ModelNotAvailable
    from spct.evaluate.harness import evaluate

    try:
        engine = Engine.load(prof.model.spec, dtype=prof.model.dtype, device=prof.model.device)
    except (ModelNotAvailable, OSError, ValueError) as e:
        _fail(f"cannot load model {prof.model.spec!r}: {e}")
    report = evaluate(engine, datasets, settings, out_dir=out, progress=progress, model=prof.model.spec, data_info=info)
    # Piped output (make, CI logs) would be squeezed to 80 columns, truncating every header.
    print_table(_results_table(report))
    console.print(f"report: {out / 'report.md'}")


def _load_datasets(
    specs: list[str], fmt: str | None, skip_bad: bool
) -> tuple[dict[str, list[Any]], dict[str, dict[str, Any]]]:
    from spct.data import load

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
) -> None:
    """Judge responses to one prompt: each sample's principles, critique and scores, then the vote."""
    from spct.config import ConfigError, load_profile

    try:
        prof = load_profile(profile, [f"model.spec={model}"] if model else [])
    except ConfigError as e:
        _fail(str(e))
    from spct.engine import Engine, ModelNotAvailable, SamplingParams
    from spct.grm.judge import JudgeItem, judge
    from spct.grm.parse import Judgment
    from spct.types import user

    s = prof.sampling
    params = SamplingParams(
        temperature=s.temperature if temperature is None else temperature, top_p=s.top_p,
        max_new_tokens=max_new_tokens or s.max_new_tokens, seed=s.seed if seed is None else seed,
        token_budget=s.token_budget,
    )  # fmt: skip
    try:
        engine = Engine.load(prof.model.spec, dtype=prof.model.dtype, device=prof.model.device)
    except (ModelNotAvailable, OSError, ValueError) as e:
        _fail(f"cannot load model {prof.model.spec!r}: {e}")
    item = JudgeItem("cli", [user(prompt)], list(response))
    (verdict, samples), = judge(engine, [item], k, params)

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
