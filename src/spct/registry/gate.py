"""The promotion gate: may a challenger replace the champion? Pure functions over numbers.

Both models must have been measured on the *same* gate set (its digest is part of
the metrics); the gate never compares numbers from different data.

:class:`GatePolicy` is the one place the thresholds are declared. Everything that gates
reads its defaults from here: the pipeline function's parameters, ``spct promote``'s
options, :func:`spct.registry.promotion.promote` when given no policy, and a profile's
``gate:`` section (``spct.config.Profile.gate``), which is what ``spct pipeline run``
passes; a profile only names what differs (``configs/tiny.yaml``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GatePolicy(BaseModel):
    """The promotion thresholds, declared here once; every field has a working default.

    The defaults are the production gate (the ``a100`` profile and the pipeline's compiled
    defaults); accuracies and rates are fractions in 0..1.
    """

    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(
        0.01, ge=0.0, le=1.0,
        description="how far the challenger's gate accuracy may fall below the champion's, and below the best "
                    "promoted version's on the same gate set (so losses cannot add up over promotions)",
    )
    min_parse_rate: float = Field(0.9, ge=0.0, le=1.0, description="least share of the challenger's critiques that must parse")
    max_category_drop: float = Field(
        0.05, ge=0.0, le=1.0, description="largest accuracy drop allowed in any one category, against the champion"
    )
    require_above_baselines: bool = Field(
        True,
        description="the gate column's 95% interval must clear the best of its position baselines (chance, first slot, "
                    "last slot) and surface baselines (a response-only classifier, longest, shortest) on every dataset",
    )


@dataclass(frozen=True)
class GateMetrics:
    """One model's numbers on one gate set (accuracies and rates in 0..1)."""

    accuracy: float
    parse_rate: float
    gate_set: str
    n: int = 0
    categories: dict[str, float] = field(default_factory=dict)
    # Whether the gate column's 95% interval lies above the best of its position and surface
    # baselines on every dataset; None when not measured (a report from before the baselines existed).
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


BASELINES = "position and surface baselines (chance, first slot, last slot; response-only classifier, longest, shortest)"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str]
    challenger: GateMetrics
    champion: GateMetrics | None
    policy: GatePolicy
    # The best promoted version on the same gate set (the champion when none beats it) and its number.
    best: GateMetrics | None = None
    best_version: str = ""

    def to_tags(self) -> dict[str, str]:
        return {
            "spct.gate.decision": "promoted" if self.promote else "refused",
            "spct.gate.reasons": "; ".join(self.reasons),
            "spct.gate.policy": self.policy.model_dump_json(),
            "spct.gate.champion_accuracy": "" if self.champion is None else f"{self.champion.accuracy:.6f}",
            "spct.gate.best_accuracy": "" if self.best is None else f"{self.best.accuracy:.6f}",
            "spct.gate.best_version": self.best_version,
        }


def _same_set(challenger: GateMetrics, other: GateMetrics, what: str) -> None:
    if other.gate_set != challenger.gate_set:
        raise ValueError(
            f"gate sets differ: challenger measured on {challenger.gate_set!r}, {what} on {other.gate_set!r}; "
            "evaluate both on the same gate set"
        )


def _floor_check(challenger: GateMetrics, ref: GateMetrics, label: str, tolerance: float) -> tuple[bool, str]:
    ok = challenger.accuracy + 1e-12 >= ref.accuracy - tolerance
    return ok, f"accuracy {challenger.accuracy:.3f} {'>=' if ok else '<'} {label} {ref.accuracy:.3f} - {tolerance:.3f}"


def decide(
    challenger: GateMetrics,
    champion: GateMetrics | None,
    policy: GatePolicy,
    best: GateMetrics | None = None,
    *,
    best_version: str = "",
) -> Decision:
    """Apply the rules; ``reasons`` lists every check with its numbers, passed or not.

    A first version is promoted only when it judges better than a position-only or surface-only
    judge: a model at chance that always names one slot, or one that picks the longer answer,
    would otherwise become champion by default.

    ``best`` is the best version ever promoted on this gate set (``best_version`` names it; it
    defaults to the champion). The challenger may lose at most ``tolerance`` against it as well as
    against the champion: otherwise a chain of promotions, each a little worse than the last, would
    drift down without bound.

    >>> p = GatePolicy(tolerance=0.01, min_parse_rate=0.5, max_category_drop=0.05)
    >>> decide(GateMetrics(0.70, 0.9, "s", above_baselines=True), GateMetrics(0.72, 0.9, "s"), p).promote
    False
    >>> decide(GateMetrics(0.715, 0.9, "s", above_baselines=True), GateMetrics(0.72, 0.9, "s"), p).promote
    True
    >>> d = decide(GateMetrics(0.715, 0.9, "s", above_baselines=True), GateMetrics(0.72, 0.9, "s"), p,
    ...            GateMetrics(0.73, 0.9, "s"), best_version="3")
    >>> d.promote, d.reasons[2:]
    (False, ['accuracy 0.715 >= champion 0.720 - 0.010', 'accuracy 0.715 < best promoted (version 3) 0.730 - 0.010'])
    >>> decide(GateMetrics(0.5, 1.0, "s", above_baselines=False), None, p).reasons[1]
    'accuracy interval does not clear the position and surface baselines (chance, first slot, last slot; response-only classifier, longest, shortest)'
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
            reasons.append("accuracy interval above the position and surface baselines")
        else:
            ok = False
            reasons.append(
                f"accuracy interval does not clear the {BASELINES}"
                if challenger.above_baselines is False
                else "no position and surface baselines measured for the challenger (re-evaluate with this spct)"
            )
    if champion is None and best is None:
        reasons.append("no champion: nothing to compare against")
        return Decision(ok, reasons, challenger, None, policy)
    if champion is not None:
        _same_set(challenger, champion, "champion")
        passed, line = _floor_check(challenger, champion, "champion", policy.tolerance)
        ok &= passed
        reasons.append(line)
    else:
        reasons.append("no champion (its alias was removed): comparing with the best promoted version only")
    if best is None:
        best, label = champion, "best promoted (the champion)"
    else:
        _same_set(challenger, best, "the best promoted version")
        label = f"best promoted (version {best_version})" if best_version else "best promoted"
    passed, line = _floor_check(challenger, best, label, policy.tolerance)
    ok &= passed
    reasons.append(line)
    if champion is None:
        return Decision(ok, reasons, challenger, None, policy, best, best_version)
    for cat in sorted(set(champion.categories) & set(challenger.categories)):
        drop = champion.categories[cat] - challenger.categories[cat]
        if drop > policy.max_category_drop + 1e-12:
            ok = False
            reasons.append(f"category {cat!r} dropped {drop:.3f} > {policy.max_category_drop:.3f}")
    if ok and champion.categories:
        reasons.append(f"no category dropped more than {policy.max_category_drop:.3f}")
    return Decision(ok, reasons, challenger, champion, policy, best, best_version)
