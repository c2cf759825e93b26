"""One training process per GPU of this node: ``torchrun --standalone`` around the stage's CLI.

A pipeline's training pod asks for ``ClusterSettings.gpus`` GPUs (8 on an A100 node). Running the
stage in the task's own process would use GPU 0 alone (WORLD_SIZE 1) and leave ZeRO nothing to
partition over, so the 27B profile runs out of memory on one GPU while seven idle. Instead the
task launches the same command line a multi-node job runs on each node
(``spct <stage> --config P --model M --out D --set k=v ...``) under torchrun, one rank per GPU,
and reads back what rank 0 wrote (``summary.json``, ``metrics.jsonl``).

    launch_local(["rft", "--config", "a100", ...], procs=8, env={...}, log=out / "launch.log")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

# Set by a launcher for its own children; a value inherited from the task's environment (a local
# run's WORLD_SIZE=1, a stale MASTER_PORT) would override what torchrun gives each rank.
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
             "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


class LaunchFailed(RuntimeError):
    """The launched ranks did not all exit 0."""


def local_procs() -> int:
    """One process per GPU this process can see (a training pod sees the GPUs it requested); 1 on CPU."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def spct_executable() -> str:
    """The ``spct`` command of this Python's environment (the one the task itself runs from)."""
    here = shutil.which("spct", path=str(Path(sys.executable).parent))
    found = here or shutil.which("spct")
    if not found:
        raise FileNotFoundError(f"no spct command beside {sys.executable} or on PATH: install the package "
                                "(pip install spct) in the environment that runs the training task")
    return found


def launch_command(args: Sequence[str], procs: int) -> list[str]:
    """``torchrun --standalone --nproc-per-node=procs --no-python spct ARGS`` for this environment.

    ``--standalone`` rendezvouses on a free local port, so two tasks on one node do not collide.
    """
    if procs < 1:
        raise ValueError(f"procs must be >= 1, got {procs}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
            "--no-python", spct_executable(), *args]


def launch_local(args: Sequence[str], procs: int, *, env: Mapping[str, str] | None = None,
                 log: Path | None = None, tail: int = 40) -> None:
    """Run the stage command ``args`` as ``procs`` ranks on this node and wait for all of them.

    Output goes to this process's stdout (the pod log) and to ``log``; on failure
    :class:`LaunchFailed` names the exit code and quotes the ranks' ``error:`` lines (the CLI's
    message naming the problem), or the last ``tail`` lines when there are none.
    """
    cmd = launch_command(args, procs)
    child_env = {k: v for k, v in os.environ.items() if k not in DIST_VARS} | dict(env or {})
    last: deque[str] = deque(maxlen=tail)
    errors: list[str] = []  # the CLI's own "error: ..." lines: the cause, above torchrun's traceback
    sink = open(log, "a", encoding="utf-8") if log is not None else None  # noqa: SIM115 (closed below)
    try:
        header = f"launching {procs} ranks: {' '.join(cmd)}\n"
        sys.stdout.write(header)
        if sink is not None:
            sink.write(header)
        with subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              bufsize=1) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                if sink is not None:
                    sink.write(line)
                last.append(line.rstrip("\n"))
                if line.startswith("error:") and line not in errors and len(errors) < 8:
                    errors.append(line)
            rc = proc.wait()
    finally:
        if sink is not None:
            sink.close()
    if rc != 0:
        cause = "".join(errors) or "\n".join(last) + "\n"
        raise LaunchFailed(f"{args[0] if args else 'spct'}: {procs} ranks under torchrun exited {rc}:\n{cause}"
                           + (f"(the whole output: {log})" if log is not None else ""))
