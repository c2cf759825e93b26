"""The promotion gate's rules on numbers (no registry needed), and the one place its thresholds come from."""

from pathlib import Path

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


def test_first_version_at_baseline_level_is_refused():
    # What the demo once promoted: every critique parses, accuracy 50% with one slot always named.
    chance = GateMetrics(0.5, 1.0, "sha:abc", 64, above_baselines=False)
    d = decide(chance, None, POLICY)
    assert not d.promote
    assert ("accuracy interval does not clear the position and surface baselines (chance, first slot, last slot; "
            "response-only classifier, longest, shortest)") in d.reasons
    assert "no position and surface baselines measured" in decide(GateMetrics(0.9, 1.0, "sha:abc"), None, POLICY).reasons[1]
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


def test_the_best_promoted_version_bounds_the_drop_as_well_as_the_champion():
    """Within tolerance of the champion is not enough: the challenger is also held to the best version
    ever promoted on this gate set, so small losses cannot add up over promotions. Both checks are
    listed with their numbers, passed or not."""
    champ = GateMetrics(0.690, 0.95, "sha:abc", 200, above_baselines=True)
    best = GateMetrics(0.700, 0.95, "sha:abc", 200, above_baselines=True)
    ok = decide(GateMetrics(0.685, 0.95, "sha:abc", 200, above_baselines=True), champ, POLICY, best, best_version="1")
    assert ok.promote
    assert ok.reasons[2:4] == ["accuracy 0.685 >= champion 0.690 - 0.020",
                               "accuracy 0.685 >= best promoted (version 1) 0.700 - 0.020"]
    d = decide(GateMetrics(0.675, 0.95, "sha:abc", 200, above_baselines=True), champ, POLICY, best, best_version="1")
    assert not d.promote
    assert d.reasons[2:4] == ["accuracy 0.675 >= champion 0.690 - 0.020",
                              "accuracy 0.675 < best promoted (version 1) 0.700 - 0.020"]
    tags = d.to_tags()
    assert (tags["spct.gate.best_accuracy"], tags["spct.gate.best_version"]) == ("0.700000", "1")
    # No better earlier version: the champion is the best, and the second check says so.
    assert "accuracy 0.685 >= best promoted (the champion) 0.690 - 0.020" in decide(
        GateMetrics(0.685, 0.95, "sha:abc", above_baselines=True), champ, POLICY).reasons
    with pytest.raises(ValueError, match="best promoted version"):
        decide(GateMetrics(0.9, 0.95, "sha:abc", above_baselines=True), champ, POLICY, GateMetrics(0.7, 0.9, "sha:other"))


def test_one_policy_everywhere(tmp_path):
    """The thresholds are declared once (GatePolicy): the pipeline's parameter defaults, `spct promote`'s
    shown defaults and `spct pipeline run`'s arguments (the profile's gate section) all come from it,
    and the pipeline's default profile (a100) declares no gate of its own."""
    import inspect

    import typer

    from spct.cli import pipeline as cli
    from spct.config import load_profile
    from spct.pipeline.run import load_pipeline, local_arguments

    default = GatePolicy()
    fields = list(GatePolicy.model_fields)
    params = inspect.signature(load_pipeline().pipeline_func).parameters
    assert {f: params[f].default for f in fields} == default.model_dump()
    assert params["profile"].default == "a100" and load_profile("a100").gate == default
    options = inspect.signature(cli.promote_command).parameters
    for f in fields:
        opt = options[f].default
        assert isinstance(opt, typer.models.OptionInfo) and opt.default is None  # filled from --profile or GatePolicy
        shown = str(getattr(default, f)).lower() if f == "require_above_baselines" else f"{getattr(default, f):g}"
        assert opt.help.endswith(f"else {shown}).")
    for profile in ("tiny", "demo", "a100"):
        args = local_arguments(profile, tmp_path, "sqlite:///x.db", "m")
        assert {f: args[f] for f in fields} == load_profile(profile).gate.model_dump()
    # What the profiles declare differs from the defaults only where they say why (configs/*.yaml).
    assert load_profile("tiny").gate == default.model_copy(update={"min_parse_rate": 0.0})
    assert load_profile("demo").gate == default.model_copy(update={"tolerance": 0.02})
    assert local_arguments("tiny", tmp_path, "sqlite:///x.db", "m", ["gate.min_parse_rate=0.4"])["min_parse_rate"] == 0.4
    # docs/pipeline.md states the defaults: they must be these.
    doc = (Path(__file__).resolve().parents[1] / "docs" / "pipeline.md").read_text()
    assert (f"`tolerance` {default.tolerance:g}, `min_parse_rate` {default.min_parse_rate:g}, `max_category_drop` "
            f"{default.max_category_drop:g}, `require_above_baselines` {str(default.require_above_baselines).lower()}") in doc
