"""``spct coldstart``, ``spct rft``, ``spct grpo``, ``spct metarm``: the training stages.

Each reads a profile (``--config tiny|demo|a100|file.yaml``), applies ``--set key=value``
overrides, writes its model and metrics under ``--out`` and prints a summary.
``--resume`` continues from the newest checkpoint in ``--out``. On GPUs launch with
``deepspeed --num_gpus 8 --no_local_rank $(which spct) grpo ...`` or
``torchrun --nproc-per-node 8 --no-python spct grpo ...``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from spct.cli.app import app

console = Console()

CONFIG = typer.Option("tiny", "--config", "--profile", "-c", help="tiny | demo | a100 | path to a profile YAML.")
OUT = typer.Option(..., "--out", "-o", help="Run folder (created): model/, checkpoints/, metrics.jsonl, summary.json.")
MODEL = typer.Option(None, "--model", help="Model spec to start from (overrides model.spec), e.g. runs/tiny/coldstart/model.")
SET = typer.Option(None, "--set", help="Profile override key.sub=value, e.g. grpo.beta=0.02; repeatable.")
RESUME = typer.Option(False, "--resume", help="Continue from the newest checkpoint under --out.")
PROGRESS = typer.Option(True, "--progress/--no-progress")


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _profile(config: str, overrides: list[str] | None) -> Any:
    from spct.config import ConfigError, load_profile

    try:
        return load_profile(config, overrides)
    except ConfigError as e:
        _fail(str(e))


def _run(stage: str, out: Path, fn: Any) -> None:
    """Run a stage with console + JSONL metrics, then print and save its summary."""
    import os

    from spct.data.errors import DataError
    from spct.engine import ModelNotAvailable
    from spct.tracking import default_logger

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    logger = default_logger(out, rank=rank)
    try:
        summary = fn(logger)
    except (ModelNotAvailable, DataError, FileNotFoundError, ValueError) as e:
        msg = str(e)
        _fail(msg if msg.startswith(f"{stage}:") else f"{stage}: {msg}")
    finally:
        logger.close()
    if rank != 0:
        return
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    table = Table(title=f"spct {stage}: {out}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in _flat(summary).items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console.print(table)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _with_model(overrides: list[str] | None, model: str | None) -> list[str]:
    return [*(overrides or []), *([f"model.spec={model}"] if model else [])]


@app.command("coldstart")
def coldstart_command(
    out: Path = OUT, config: str = CONFIG, model: str | None = MODEL, overrides: list[str] | None = SET,
    resume: bool = RESUME, progress: bool = PROGRESS,
) -> None:
    """Bootstrap (not in the paper): SFT on template critiques of the verifiable data, so a small base writes the format."""
    from spct.train.coldstart import run_coldstart

    profile = _profile(config, _with_model(overrides, model))
    _run("coldstart", out, lambda lg: run_coldstart(profile, out, logger=lg, resume=resume, progress=progress))


@app.command("rft")
def rft_command(
    out: Path = OUT, config: str = CONFIG, model: str | None = MODEL, overrides: list[str] | None = SET,
    resume: bool = RESUME, progress: bool = PROGRESS,
) -> None:
    """Rejective fine-tuning: sample N critiques per item, keep the strictly right ones (hinting the unsolved), SFT on them."""
    from spct.train import rft

    profile = _profile(config, _with_model(overrides, model))
    _run("rft", out, lambda lg: rft.run(profile, out, logger=lg, resume=resume, progress=progress))


@app.command("grpo")
def grpo_command(
    out: Path = OUT, config: str = CONFIG, model: str | None = MODEL, overrides: list[str] | None = SET,
    resume: bool = RESUME, progress: bool = PROGRESS,
) -> None:
    """Rule-based online RL: G shuffled critiques per item, +1/-1 strict reward, clipped token-level loss, k3 KL."""
    from spct.train import grpo

    profile = _profile(config, _with_model(overrides, model))
    _run("grpo", out, lambda lg: grpo.train(profile, out, logger=lg, resume=resume, progress=progress))


@app.command("metarm")
def metarm_command(
    out: Path = OUT, config: str = CONFIG, model: str | None = MODEL, overrides: list[str] | None = SET,
    samples: Path | None = typer.Option(None, "--samples", help="RFT's samples.jsonl (default: metarm.samples, else sample fresh)."),
    resume: bool = RESUME, progress: bool = PROGRESS,
) -> None:
    """Meta RM: a scalar head trained with BCE to tell right critiques from wrong ones; reports held-out AUC."""
    from spct.train import metarm

    if samples is not None and not samples.is_file():
        _fail(f"--samples {samples}: no such file")
    profile = _profile(config, _with_model(overrides, model))
    _run("metarm", out, lambda lg: metarm.train(profile, out, logger=lg, samples=samples, resume=resume, progress=progress))
