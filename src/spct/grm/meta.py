"""Loading a trained meta RM for inference (MetaRM@k), with errors that name the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class MetaRMError(ValueError):
    """A meta RM folder that cannot be used."""


def load_meta_rm(directory: str | Path, device: str = "cpu") -> Any:
    """The meta RM saved in ``directory`` by the meta RM stage (``MetaRewardModel.save``)."""
    path = Path(directory)
    if not path.is_dir():
        raise MetaRMError(f"{path}: no such meta RM folder")
    from spct.train.metarm import MetaRewardModel

    try:
        return MetaRewardModel.load(path, device=device)
    except (OSError, ValueError, KeyError) as e:
        raise MetaRMError(f"{path}: not a loadable meta RM: {e}") from e
