"""Options of a generated dataset's spec: ``builtin:NAME?n=50&seed=3`` or ``reasoning-gym:TASKS?...``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs


def options(query: str, allowed: Sequence[str]) -> dict[str, str]:
    """``query`` (the part after ``?``) as option -> value (the last of a repeated option);
    ``ValueError`` naming an unknown option or an unreadable query.

    >>> options("n=5&split=train", ("n", "split"))
    {'n': '5', 'split': 'train'}
    """
    if not query:
        return {}
    try:
        q = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=True).items()}
    except ValueError as e:
        raise ValueError(f"cannot read the options {query!r} (use {', '.join(f'{a}=' for a in allowed)})") from e
    unknown = sorted(set(q) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (use {', '.join(allowed)})")
    return q


def integer(q: Mapping[str, str], key: str, default: int) -> int:
    """Option ``key`` as an integer (``default`` when absent); ``ValueError`` naming it otherwise."""
    try:
        return int(q.get(key, default))
    except ValueError:
        raise ValueError(f"option {key!r} must be an integer, got {q[key]!r}") from None
