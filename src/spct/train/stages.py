"""The training stages as one table.

Every stage is ``run(profile, out_dir, *, logger, resume=False, progress=True) -> summary``: it
reads everything else from the profile (``model.spec`` to start from, the stage section's
``data``, the meta RM's ``samples``) and writes ``out_dir/model``. The ``spct`` commands, the
pipeline's training step and the tests look a stage up here; nothing finds one by name
reflection. Imports stay inside the runners so listing the stages never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Runner = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    name: str
    help: str
    run: Runner


def _coldstart(profile: Any, out_dir: Path, *, logger: Any, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    from spct.train.coldstart import run_coldstart

    return run_coldstart(profile, out_dir, logger=logger, resume=resume, progress=progress)


def _rft(profile: Any, out_dir: Path, *, logger: Any, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    from spct.train import rft

    return rft.run(profile, out_dir, logger=logger, resume=resume, progress=progress)


def _grpo(profile: Any, out_dir: Path, *, logger: Any, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    from spct.train import grpo

    return grpo.train(profile, out_dir, logger=logger, resume=resume, progress=progress)


def _metarm(profile: Any, out_dir: Path, *, logger: Any, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    from spct.train import metarm

    return metarm.train(profile, out_dir, logger=logger, resume=resume, progress=progress)


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage("coldstart", "Bootstrap (not in the paper): SFT on template critiques of the verifiable data, so a small base "
                           "writes the format.", _coldstart),
        Stage("rft", "Rejective fine-tuning: sample N critiques per item, keep the strictly right ones (hinting the "
                     "unsolved), SFT on them.", _rft),
        Stage("grpo", "Rule-based online RL: G shuffled critiques per item, +1/-1 strict reward, clipped token-level "
                      "loss, k3 KL.", _grpo),
        Stage("metarm", "Meta RM: a scalar head trained with BCE to tell right critiques from wrong ones; reports "
                        "held-out AUC.", _metarm),
    )
}  # fmt: skip


def stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown training stage {name!r} (stages: {', '.join(STAGES)})") from None
