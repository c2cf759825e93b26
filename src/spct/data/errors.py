"""Errors that name the bad record, and the tally of records skipped with ``--skip-bad``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data: says which file, which record (line/index/row) and which field.

    ``unit`` names what ``record`` counts: ``line`` (1-based, JSONL), ``record``
    (0-based index into a JSON array) or ``row`` (0-based, parquet / datasets).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        record: int | None = None,
        field: str | None = None,
        unit: str = "record",
    ) -> None:
        self.reason = message
        self.path = str(path) if path is not None else None
        self.record = record
        self.field = field
        self.unit = unit
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.record is not None:
            parts.append(f"{self.unit} {self.record}")
        if self.field is not None:
            parts.append(f"field '{self.field}'")
        parts.append(self.reason)
        return ": ".join(parts)

    def location(self) -> dict[str, Any]:
        return {"path": self.path, "unit": self.unit, "record": self.record, "field": self.field, "reason": self.reason}


@dataclass
class Skipped:
    """Records left out under ``skip_bad``: each with its location and reason."""

    records: list[DataError] = field(default_factory=list)

    def add(self, err: DataError) -> None:
        self.records.append(err)

    def extend(self, other: "Skipped") -> None:
        self.records.extend(other.records)

    @property
    def count(self) -> int:
        return len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def by_reason(self) -> dict[str, int]:
        """Counts keyed by ``field: reason`` so similar failures group together."""
        c = Counter(f"{e.field}: {e.reason}" if e.field else e.reason for e in self.records)
        return dict(sorted(c.items()))

    def to_dict(self, max_listed: int = 1000) -> dict[str, Any]:
        return {
            "count": self.count,
            "by_reason": self.by_reason(),
            "records": [e.location() for e in self.records[:max_listed]],
            "listed": min(self.count, max_listed),
        }
