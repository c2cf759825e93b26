"""The promotion gate's rules on numbers (no registry needed)."""

import pytest

from spct.registry.gate import GateMetrics, GatePolicy, decide

POLICY = GatePolicy(tolerance=0.02, min_parse_rate=0.8, max_category_drop=0.05)
CHAMP = GateMetrics(accuracy=0.70, parse_rate=0.95, gate_set="sha:abc", n=200, categories={"chat": 0.8, "math": 0.6})


def test_better_challenger_passes_with_every_check_named():
    d = decide(GateMetrics(0.72, 0.97, "sha:abc", 200, {"chat": 0.81, "math": 0.63}, above_baselines=True), CHAMP, POLICY)
    assert d.promote
    assert any("parse rate 0.970 >= 0.800" in r for r in d.reasons)
    assert any("accuracy 0.720 >= champion 0.700" in r for r in d.reasons)


def test_within_tolerance_passes_and_beyond_it_fails():
    assert decide(GateMetrics(0.681, 0.9, "sha:abc", 200, {"chat": 0.8, "math": 0.6}, above_baselines=True), CHAMP, POLICY).promote
    d = decide(GateMetrics(0.679, 0.9, "sha:abc", 200, {"chat": 0.8, "math": 0.6}, above_baselines=True), CHAMP, POLICY)
    assert not d.promote
    assert "accuracy 0.679 < champion 0.700 - 0.020" in d.reasons


def test_low_parse_rate_is_refused_even_without_champion():
    d = decide(GateMetrics(0.9, 0.5, "sha:abc"), None, POLICY)
    assert not d.promote and "parse rate 0.500 < 0.800" in d.reasons


def test_first_version_at_position_baseline_level_is_refused():
    # What the demo once promoted: every critique parses, accuracy 50% with one slot always named.
    chance = GateMetrics(0.5, 1.0, "sha:abc", 64, above_baselines=False)
    d = decide(chance, None, POLICY)
    assert not d.promote
    assert "accuracy interval does not clear the position baselines (chance, first slot, last slot)" in d.reasons
    assert not decide(GateMetrics(0.9, 1.0, "sha:abc"), None, POLICY).promote  # not measured: not promoted
    assert decide(GateMetrics(0.9, 1.0, "sha:abc", above_baselines=True), None, POLICY).promote
    lax = POLICY.model_copy(update={"require_above_baselines": False})
    assert decide(chance, None, lax).promote


def test_one_category_dropping_too_far_is_refused_despite_higher_accuracy():
    d = decide(GateMetrics(0.75, 0.95, "sha:abc", 200, {"chat": 0.95, "math": 0.54}), CHAMP, POLICY)
    assert not d.promote
    assert any(r.startswith("category 'math' dropped 0.060") for r in d.reasons)


def test_different_gate_sets_are_not_compared():
    with pytest.raises(ValueError, match="gate sets differ"):
        decide(GateMetrics(0.9, 0.9, "sha:other"), CHAMP, POLICY)


def test_metrics_round_trip_through_version_tags():
    assert GateMetrics.from_tags(CHAMP.to_tags()) == CHAMP
    flagged = GateMetrics(0.8, 0.9, "sha:abc", 10, above_baselines=True)
    assert GateMetrics.from_tags(flagged.to_tags()) == flagged
    assert GateMetrics.from_dict(flagged.to_dict()) == flagged
    assert GateMetrics.from_tags({}) is None
    d = decide(GateMetrics(0.5, 0.9, "sha:abc"), CHAMP, POLICY)
    tags = d.to_tags()
    assert tags["spct.gate.decision"] == "refused" and tags["spct.gate.champion_accuracy"] == "0.700000"
