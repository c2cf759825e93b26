"""One small metrics-logging interface for every training and evaluation job.

A :class:`MetricsLogger` takes run parameters once, numeric metrics per step and
artifact paths. Console and JSONL loggers live here; the pipeline adds an MLflow
one with the same four methods, and :class:`MultiLogger` fans out to several.
Only rank 0 of a distributed job should hold a real logger (see ``rank_zero``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable


@runtime_checkable
class MetricsLogger(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None: ...

    def log_artifact(self, path: str | Path) -> None: ...

    def close(self) -> None: ...


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"grpo.lr": 4e-07, ...}`` (what flat trackers such as MLflow take).

    >>> flatten({"a": {"b": 1, "c": [1, 2]}, "d": None})
    {'a.b': 1, 'a.c': [1, 2], 'd': None}
    """
    out: dict[str, Any] = {}
    for k, v in params.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e6):
        return str(int(v))
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.3e}"
    return f"{v:.4f}"


class ConsoleLogger:
    """One line per logged step (``every``-th step), written so it does not break tqdm bars."""

    def __init__(self, every: int = 1, stream: TextIO | None = None) -> None:
        self.every = max(1, every)
        self.stream = stream

    def _write(self, line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line, file=self.stream or sys.stderr)

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass  # the run's config is in its output directory; a wall of params helps nobody here

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        if step % self.every == 0:
            self._write(f"step {step}: " + "  ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))

    def log_artifact(self, path: str | Path) -> None:
        self._write(f"artifact: {path}")

    def close(self) -> None:
        pass


class JsonlLogger:
    """Appends ``{"kind": "params"|"metrics"|"artifact", ...}`` lines; a resumed run continues the file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")

    def _write(self, rec: dict[str, Any]) -> None:
        rec["time"] = round(time.time(), 3)
        self._f.write(json.dumps(rec, default=str, allow_nan=False) + "\n")
        self._f.flush()

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._write({"kind": "params", "params": flatten(params)})

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        clean = {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}
        self._write({"kind": "metrics", "step": step, "metrics": clean})

    def log_artifact(self, path: str | Path) -> None:
        self._write({"kind": "artifact", "path": str(path)})

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class MultiLogger:
    """Sends every call to each logger in turn."""

    def __init__(self, *loggers: MetricsLogger) -> None:
        self.loggers = list(loggers)

    def log_params(self, params: Mapping[str, Any]) -> None:
        for lg in self.loggers:
            lg.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        for lg in self.loggers:
            lg.log_metrics(metrics, step)

    def log_artifact(self, path: str | Path) -> None:
        for lg in self.loggers:
            lg.log_artifact(path)

    def close(self) -> None:
        for lg in self.loggers:
            lg.close()


def read_jsonl_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The ``metrics`` records of a JSONL log, in order (for summaries and tests)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("kind") == "metrics":
            out.append(rec)
    return out


def default_logger(out_dir: str | Path | None, console_every: int = 1, rank: int = 0) -> MetricsLogger:
    """Console + ``<out_dir>/metrics.jsonl`` on rank 0; a logger that drops everything elsewhere."""
    if rank != 0:
        return MultiLogger()
    loggers: list[MetricsLogger] = [ConsoleLogger(console_every)]
    if out_dir is not None:
        loggers.append(JsonlLogger(Path(out_dir) / "metrics.jsonl"))
    return MultiLogger(*loggers)
