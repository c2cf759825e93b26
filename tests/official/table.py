"""A list of rows with the few ``datasets.Dataset`` methods the vendored reward-bench code calls.

Upstream passes Hugging Face ``Dataset``s; loading ``datasets`` for every generated case would
dominate the tests' time, and the official functions use only these methods: iteration over
row dicts, ``ds[column]``, ``len``, ``filter``, ``column_names``, ``remove_columns`` and
``add_column``, each with the Dataset semantics (new objects, rows as dicts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any


class Table:
    def __init__(self, rows: Sequence[dict[str, Any]]):
        self._rows = [dict(r) for r in rows]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(dict(r) for r in self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, column: str) -> list[Any]:
        return [r[column] for r in self._rows]

    @property
    def column_names(self) -> list[str]:
        return list(self._rows[0]) if self._rows else []

    def filter(self, keep: Callable[[dict[str, Any]], bool]) -> "Table":
        return Table([r for r in self._rows if keep(dict(r))])

    def remove_columns(self, names: Sequence[str]) -> "Table":
        return Table([{k: v for k, v in r.items() if k not in names} for r in self._rows])

    def add_column(self, name: str, values: Sequence[Any]) -> "Table":
        if len(values) != len(self._rows):
            raise ValueError(f"{len(values)} values for {len(self._rows)} rows")
        return Table([{**r, name: v} for r, v in zip(self._rows, values)])
