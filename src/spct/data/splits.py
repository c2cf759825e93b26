"""The train/held-out partition every generator uses: a fixed function of an item's inputs.

A generator hashes what makes an item the same item (its kind and parameters, or its task and
normalised question) and asks :func:`side`: the input is held out iff the hash lands in the last
``HELDOUT_SHARE`` of the range. Training specs ask for ``split=train``, evaluation specs for
``split=heldout``, so no seed or sample size puts one input in both.
"""

from __future__ import annotations

import hashlib

SPLITS = ("all", "train", "heldout")
HELDOUT_SHARE = 0.2


def side(key: str) -> str:
    """``train`` or ``heldout`` for an item whose identity is ``key``.

    >>> side("arithmetic:[3, 4]") in ("train", "heldout")
    True
    """
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return "heldout" if h >= 1 - HELDOUT_SHARE else "train"


def check_split(split: str) -> str:
    """``split`` if it is one of :data:`SPLITS`, else a ``ValueError`` naming the choices."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split
