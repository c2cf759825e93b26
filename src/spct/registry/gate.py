"""The promotion gate: may a challenger replace the champion? Pure functions over numbers.

Both models must have been measured on the *same* gate set (its digest is part of
the metrics); the gate never compares numbers from different data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GatePolicy(BaseModel):
    """Thresholds; every field has a working default."""

    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(0.01, ge=0.0, le=1.0, description="challenger accuracy may be this far below the champion's")
    min_parse_rate: float = Field(0.5, ge=0.0, le=1.0, description="share of critiques that must parse")
    max_category_drop: float = Field(0.05, ge=0.0, le=1.0, description="largest allowed accuracy drop in any one category")
    require_above_baselines: bool = Field(
        True, description="the gate column's 95% interval must clear its position baselines (chance, first slot, last slot)"
    )


@dataclass(frozen=True)
class GateMetrics:
    """One model's numbers on one gate set (accuracies and rates in 0..1)."""

    accuracy: float
    parse_rate: float
    gate_set: str
    n: int = 0
    categories: dict[str, float] = field(default_factory=dict)
    # Whether the gate column's 95% interval lies above its best position-only baseline on every
    # dataset; None when not measured (a report from before the baselines existed).
    above_baselines: bool | None = None

    def to_tags(self) -> dict[str, str]:
        tags = {
            "spct.gate.accuracy": f"{self.accuracy:.6f}",
            "spct.gate.parse_rate": f"{self.parse_rate:.6f}",
            "spct.gate.set": self.gate_set,
            "spct.gate.n": str(self.n),
        }
        if self.categories:
            tags["spct.gate.categories"] = json.dumps(self.categories, sort_keys=True)
        if self.above_baselines is not None:
            tags["spct.gate.above_baselines"] = str(self.above_baselines).lower()
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> "GateMetrics | None":
        if "spct.gate.accuracy" not in tags:
            return None
        return cls(
            accuracy=float(tags["spct.gate.accuracy"]),
            parse_rate=float(tags.get("spct.gate.parse_rate", "0")),
            gate_set=tags.get("spct.gate.set", ""),
            n=int(tags.get("spct.gate.n", "0")),
            categories=json.loads(tags.get("spct.gate.categories", "{}")),
            above_baselines=_flag(tags.get("spct.gate.above_baselines")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GateMetrics":
        return cls(
            accuracy=float(d["accuracy"]),
            parse_rate=float(d["parse_rate"]),
            gate_set=str(d["gate_set"]),
            n=int(d.get("n", 0)),
            categories={str(k): float(v) for k, v in (d.get("categories") or {}).items()},
            above_baselines=_flag(d.get("above_baselines")),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> "GateMetrics":
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{p}: not a gate-metrics file ({e})") from e


def _flag(v: Any) -> bool | None:
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    if str(v).lower() in ("true", "false"):
        return str(v).lower() == "true"
    raise ValueError(f"above_baselines: expected true or false, got {v!r}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    challenger: GateMetrics
    champion: GateMetrics | None
    policy: GatePolicy

    def to_tags(self) -> dict[str, str]:
        return {
            "spct.gate.decision": "promoted" if self.promote else "refused",
            "spct.gate.reasons": "; ".join(self.reasons),
            "spct.gate.policy": self.policy.model_dump_json(),
            "spct.gate.champion_accuracy": "" if self.champion is None else f"{self.champion.accuracy:.6f}",
        }


def decide(challenger: GateMetrics, champion: GateMetrics | None, policy: GatePolicy) -> Decision:
    """Apply the rules; ``reasons`` lists every check with its numbers, passed or not.

    A first version is promoted only when it judges better than a position-only judge: a model at
    chance that always names one slot would otherwise become champion by default.

    >>> p = GatePolicy(tolerance=0.01, min_parse_rate=0.5, max_category_drop=0.05)
    >>> decide(GateMetrics(0.70, 0.9, "s", above_baselines=True), GateMetrics(0.72, 0.9, "s"), p).promote
    False
    >>> decide(GateMetrics(0.715, 0.9, "s", above_baselines=True), GateMetrics(0.72, 0.9, "s"), p).promote
    True
    >>> decide(GateMetrics(0.5, 1.0, "s", above_baselines=False), None, p).reasons[1]
    'accuracy interval does not clear the position baselines (chance, first slot, last slot)'
    """
    ok = True
    reasons = []
    if challenger.parse_rate + 1e-12 >= policy.min_parse_rate:
        reasons.append(f"parse rate {challenger.parse_rate:.3f} >= {policy.min_parse_rate:.3f}")
    else:
        ok = False
        reasons.append(f"parse rate {challenger.parse_rate:.3f} < {policy.min_parse_rate:.3f}")
    if policy.require_above_baselines:
        if challenger.above_baselines:
            reasons.append("accuracy interval above the position baselines")
        else:
            ok = False
            reasons.append(
                "accuracy interval does not clear the position baselines (chance, first slot, last slot)"
                if challenger.above_baselines is False
                else "no position baselines measured for the challenger (re-evaluate with this spct)"
            )
    if champion is None:
        reasons.append("no champion: nothing to compare against")
        return Decision(ok, reasons, challenger, None, policy)
    if champion.gate_set != challenger.gate_set:
        raise ValueError(
            f"gate sets differ: challenger measured on {challenger.gate_set!r}, champion on {champion.gate_set!r}; "
            "evaluate both on the same gate set"
        )
    floor = champion.accuracy - policy.tolerance
    if challenger.accuracy + 1e-12 >= floor:
        reasons.append(f"accuracy {challenger.accuracy:.3f} >= champion {champion.accuracy:.3f} - {policy.tolerance:.3f}")
    else:
        ok = False
        reasons.append(f"accuracy {challenger.accuracy:.3f} < champion {champion.accuracy:.3f} - {policy.tolerance:.3f}")
    for cat in sorted(set(champion.categories) & set(challenger.categories)):
        drop = champion.categories[cat] - challenger.categories[cat]
        if drop > policy.max_category_drop + 1e-12:
            ok = False
            reasons.append(f"category {cat!r} dropped {drop:.3f} > {policy.max_category_drop:.3f}")
    if ok and champion.categories:
        reasons.append(f"no category dropped more than {policy.max_category_drop:.3f}")
    return Decision(ok, reasons, challenger, champion, policy)
