"""``spct curate``: load preference data, curate it, write train/eval parquet + manifest."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from spct.cli.app import app


@app.command()
def curate(
    data: list[str] = typer.Option(..., "--data", help="file, folder, builtin:NAME or reasoning-gym:TASKS?n=&seed=&split=&level= (repeatable)"),
    out: Path = typer.Option(..., "--out", help="output folder (replaced atomically)"),
    format: str | None = typer.Option(None, "--format", help="one of the loaders' formats (spct.data.FORMATS: rm-bench, judgebench, rewardbench, ...; default: detect)"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip malformed records instead of failing"),
    eval_fraction: float = typer.Option(0.1, "--eval-fraction"),
    max_tokens: int | None = typer.Option(4096, "--max-tokens", help="drop items longer than this (prompt + responses)"),
    near_dup_threshold: float = typer.Option(0.9, "--near-dup-threshold", help="MinHash Jaccard; 1.0 keeps all but exact-shingle twins"),
    seed: int = typer.Option(0, "--seed"),
    limit: int | None = typer.Option(None, "--limit", help="examples per source"),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="local tokenizer path for the length filter"),
) -> None:
    """Curate preference data into train/eval parquet with a manifest."""
    from rich.console import Console
    from rich.table import Table

    from spct.data import CurateConfig, DataError
    from spct.data import curate as run_curate

    console = Console()
    try:
        config = CurateConfig(
            format=format, skip_bad=skip_bad, eval_fraction=eval_fraction, max_tokens=max_tokens,
            near_dup_threshold=near_dup_threshold, seed=seed, limit=limit,
        )
        tok = None
        if tokenizer is not None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        manifest = run_curate(data, out, config, tokenizer=tok)
    except (DataError, ValidationError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None

    table = Table(title="spct curate")
    table.add_column("source")
    for name in ("loaded", "skipped", "train", "eval"):
        table.add_column(name, justify="right")
    for s in manifest.sources:
        table.add_row(s["path"], str(s["loaded"]), str(s["skipped"]), "", "")
    for src in sorted(set(manifest.counts["train"]["by_source"]) | set(manifest.counts["eval"]["by_source"])):
        table.add_row(
            f"  -> {src}", "", "",
            str(manifest.counts["train"]["by_source"].get(src, 0)), str(manifest.counts["eval"]["by_source"].get(src, 0)),
        )
    table.add_row("total", "", str(manifest.skipped["count"]), str(manifest.counts["train"]["total"]), str(manifest.counts["eval"]["total"]))
    console.print(table)
    console.print("drops: " + ", ".join(f"{k}={v}" for k, v in manifest.drops.items()))
    console.print(f"wrote {out}")
