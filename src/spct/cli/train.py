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
from spct.train.stages import STAGES

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


def _command(st: Any) -> Any:
    """The ``spct NAME`` command of a stage from the table: the same options for every stage;
    the meta RM's ``--samples`` sets ``metarm.samples``."""
    import inspect

    def command(**kw: Any) -> None:
        sets = _with_model(kw["overrides"], kw["model"])
        samples = kw.get("samples")
        if samples is not None:
            if not samples.is_file():
                _fail(f"--samples {samples}: no such file")
            sets.append(f"metarm.samples={samples}")
        profile = _profile(kw["config"], sets)
        out = kw["out"]
        _run(st.name, out, lambda lg: st.run(profile, out, logger=lg, resume=kw["resume"], progress=kw["progress"]))

    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, default, ann in (
            ("out", OUT, Path), ("config", CONFIG, str), ("model", MODEL, str | None),
            ("overrides", SET, list[str] | None), ("resume", RESUME, bool), ("progress", PROGRESS, bool),
        )
    ]  # fmt: skip
    if st.name == "metarm":
        params.append(inspect.Parameter("samples", inspect.Parameter.KEYWORD_ONLY, annotation=Path | None, default=SAMPLES))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = st.help
    command.__name__ = f"{st.name}_command"
    return command


SAMPLES = typer.Option(None, "--samples", help="RFT's samples.jsonl (default: metarm.samples, else sample fresh).")

for _stage in STAGES.values():
    app.command(_stage.name)(_command(_stage))
