"""Registration, gated promotion, rollback and racing promotions against a real ``mlflow server``."""

import threading
import uuid

import pytest

from spct.registry import (
    CHALLENGER,
    CHAMPION,
    GateMetrics,
    GatePolicy,
    MlflowLogger,
    RegistryError,
    client_for,
    list_versions,
    promote,
    register_version,
    rollback,
    start_pipeline_run,
)

POLICY = GatePolicy(tolerance=0.01, min_parse_rate=0.8, max_category_drop=0.05)


@pytest.fixture
def client(mlflow_server):
    return client_for(mlflow_server)


def _metrics(acc: float, parse: float = 0.95, cats: dict | None = None) -> GateMetrics:
    return GateMetrics(acc, parse, "sha:gate-set-1", 100, cats or {"chat": acc, "math": acc}, above_baselines=True)


def _version(client, run_id: str, name: str, m: GateMetrics) -> str:
    return register_version(client, name, f"{client.get_run(run_id).info.artifact_uri}/grm", m, run_id=run_id).version


@pytest.fixture
def model(client, tmp_path):
    """A fresh registered-model name and a run whose artifacts hold a small 'model' directory."""
    (tmp_path / "grm").mkdir()
    (tmp_path / "grm" / "spct.json").write_text('{"k": 1}')
    run_id = start_pipeline_run(client.tracking_uri, "registry-tests", "registry")
    client.log_artifacts(run_id, str(tmp_path / "grm"), "grm")
    return f"grm-{uuid.uuid4().hex[:8]}", run_id


def test_register_gate_promote_refuse_rollback(client, model):
    name, run_id = model
    v1 = _version(client, run_id, name, _metrics(0.60))
    assert client.get_model_version_by_alias(name, CHALLENGER).version == v1
    assert promote(client, name, policy=POLICY).promote
    assert client.get_model_version_by_alias(name, CHAMPION).version == v1

    v2 = _version(client, run_id, name, _metrics(0.70))
    d = promote(client, name, v2, POLICY)
    assert d.promote and client.get_model_version_by_alias(name, CHAMPION).version == v2
    assert client.get_model_version(name, v2).tags["spct.previous_champion"] == v1

    # A regressing challenger: refused, the decision and its numbers are on the version, champion unchanged.
    v3 = _version(client, run_id, name, _metrics(0.65))
    d = promote(client, name, v3, POLICY)
    assert not d.promote
    tags = client.get_model_version(name, v3).tags
    assert tags["spct.gate.decision"] == "refused"
    assert "accuracy 0.650 < champion 0.700 - 0.010" in tags["spct.gate.reasons"]
    assert tags["spct.gate.champion_version"] == v2
    assert client.get_model_version_by_alias(name, CHAMPION).version == v2
    assert client.get_model_version_by_alias(name, CHALLENGER).version == v3

    assert rollback(client, name) == (v2, v1)
    assert client.get_model_version_by_alias(name, CHAMPION).version == v1
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(client, name)

    rows = list_versions(client, name)
    assert [r.version for r in rows] == [v3, v2, v1]
    assert rows[0].aliases == [CHALLENGER] and rows[2].aliases == [CHAMPION]
    assert rows[0].metrics.accuracy == pytest.approx(0.65) and rows[0].decision == "refused"
    # The lock model is gone once nobody holds it.
    assert not client.search_registered_models(f"name = '{name}.promotion-lock'")


def test_small_losses_cannot_add_up_over_promotions(client, model):
    """Each version loses less than the tolerance to the one before it, but the third is more than the
    tolerance below the first: the champion check alone would promote it; the best-promoted check refuses
    it, and both checks are on the version with their numbers."""
    name, run_id = model
    v1 = _version(client, run_id, name, _metrics(0.700))
    assert promote(client, name, v1, POLICY).promote
    v2 = _version(client, run_id, name, _metrics(0.692))  # -0.008 against v1
    d2 = promote(client, name, v2, POLICY)
    assert d2.promote and "accuracy 0.692 >= best promoted (version %s) 0.700 - 0.010" % v1 in d2.reasons
    v3 = _version(client, run_id, name, _metrics(0.684))  # -0.008 against v2, -0.016 against v1
    d3 = promote(client, name, v3, POLICY)
    assert not d3.promote
    tags = client.get_model_version(name, v3).tags
    assert tags["spct.gate.decision"] == "refused"
    assert tags["spct.gate.reasons"].split("; ")[2:4] == [
        "accuracy 0.684 >= champion 0.692 - 0.010", f"accuracy 0.684 < best promoted (version {v1}) 0.700 - 0.010"]
    assert (tags["spct.gate.best_version"], tags["spct.gate.best_accuracy"]) == (v1, "0.700000")
    assert client.get_model_version_by_alias(name, CHAMPION).version == v2

    # A version measured on another gate set is not comparable, so it never sets the bar here.
    other = GateMetrics(0.99, 0.95, "sha:gate-set-2", 100, {}, above_baselines=True)
    vo = _version(client, run_id, name, other)
    client.set_model_version_tag(name, vo, "spct.gate.decision", "promoted")
    v4 = _version(client, run_id, name, _metrics(0.695))
    d4 = promote(client, name, v4, POLICY)
    assert d4.promote and d4.best_version == v1


def test_a_rolled_back_version_no_longer_sets_the_bar(client, model):
    """A rollback says the version should not have been champion, so its number stops bounding later
    challengers; promoted again, it bounds them again."""
    name, run_id = model
    v1 = _version(client, run_id, name, _metrics(0.70))
    v2 = _version(client, run_id, name, _metrics(0.80))
    assert promote(client, name, v1, POLICY).promote and promote(client, name, v2, POLICY).promote
    assert rollback(client, name) == (v2, v1)
    v3 = _version(client, run_id, name, _metrics(0.70))
    d = promote(client, name, v3, POLICY)
    assert d.promote and d.best_version == v1  # v2 (0.80, rolled back) would have refused it
    # v2 promoted again over v3: its rollback mark goes, and it is the bar once more.
    assert promote(client, name, v2, POLICY).promote
    assert "spct.rolled_back_at" not in client.get_model_version(name, v2).tags
    v5 = _version(client, run_id, name, _metrics(0.792))
    assert promote(client, name, v5, POLICY).promote
    v6 = _version(client, run_id, name, _metrics(0.785))  # within 0.01 of the champion v5, 0.015 below v2
    d6 = promote(client, name, v6, POLICY)
    assert not d6.promote and f"accuracy 0.785 < best promoted (version {v2}) 0.800 - 0.010" in d6.reasons


def test_version_without_gate_metrics_cannot_be_promoted(client, model):
    name, run_id = model
    v = register_version(client, name, f"{client.get_run(run_id).info.artifact_uri}/grm", None, run_id=run_id).version
    with pytest.raises(RegistryError, match="no gate metrics"):
        promote(client, name, v, POLICY)


def test_racing_promotions_leave_a_consistent_history(mlflow_server, model):
    name, run_id = model
    setup = client_for(mlflow_server)
    v1 = _version(setup, run_id, name, _metrics(0.60))
    promote(setup, name, v1, POLICY)
    racers = [_version(setup, run_id, name, _metrics(acc)) for acc in (0.70, 0.71, 0.72)]

    barrier = threading.Barrier(len(racers))
    errors: list[BaseException] = []

    def race(version: str) -> None:
        try:
            c = client_for(mlflow_server)  # each racer its own client, as separate processes would have
            barrier.wait()
            promote(c, name, version, POLICY)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=race, args=(v,)) for v in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

    # Serialised: each promoted version records the champion it really replaced, so the
    # previous-champion chain from the final champion runs through every promoted racer to v1.
    champion = setup.get_model_version_by_alias(name, CHAMPION).version
    promoted = {v for v in racers if setup.get_model_version(name, v).tags.get("spct.gate.decision") == "promoted"}
    chain, v = [], champion
    while v != v1:
        chain.append(v)
        v = setup.get_model_version(name, v).tags["spct.previous_champion"]
    assert set(chain) == promoted and len(chain) == len(promoted) >= 1
    # Rolling back walks the same chain.
    frm, to = rollback(setup, name)
    assert frm == champion and to == (chain[1] if len(chain) > 1 else v1)


def test_mlflow_logger_nests_stage_runs_with_curves(mlflow_server, tmp_path):
    parent = start_pipeline_run(mlflow_server, "registry-tests", "pipeline", {"profile": "tiny"})
    log = MlflowLogger.nested(mlflow_server, parent, "grpo")
    log.log_params({"lr": 4e-7, "group_size": 4})
    for step in range(3):
        log.log_metrics({"loss": 1.0 / (step + 1), "reward_mean": 0.1 * step, "skipped": float("nan")}, step=step)
    (tmp_path / "curve.txt").write_text("x")
    log.log_artifact(tmp_path / "curve.txt")
    log.close()
    c = client_for(mlflow_server)
    run = c.get_run(log.run_id)
    assert run.data.tags["mlflow.parentRunId"] == parent and run.info.status == "FINISHED"
    assert run.data.params["group_size"] == "4"
    assert [m.step for m in c.get_metric_history(log.run_id, "loss")] == [0, 1, 2]
    assert "skipped" not in run.data.metrics
    assert [f.path for f in c.list_artifacts(log.run_id)] == ["curve.txt"]


def test_cli_promote_rollback_and_list(mlflow_server, model, monkeypatch):
    from typer.testing import CliRunner

    from spct.cli import app
    from spct.cli import pipeline as cli

    monkeypatch.setattr(cli.console, "width", 200)  # a wide table: no cell is cut

    name, run_id = model
    c = client_for(mlflow_server)
    v1 = _version(c, run_id, name, _metrics(0.60))
    runner = CliRunner()
    base = ["--model", name, "--tracking-uri", mlflow_server]
    r = runner.invoke(app, ["promote", *base, "--min-parse-rate", "0.8"])
    assert r.exit_code == 0, r.output
    assert "promoted" in r.output and "no champion" in r.output
    v2 = _version(c, run_id, name, _metrics(0.50))
    r = runner.invoke(app, ["promote", *base, "--version", v2, "--min-parse-rate", "0.8"])
    assert r.exit_code == 1 and "refused" in r.output and "accuracy 0.500 < champion 0.600" in r.output
    v3 = _version(c, run_id, name, _metrics(0.65))
    assert runner.invoke(app, ["promote", *base, "--min-parse-rate", "0.8"]).exit_code == 0  # the challenger: v3
    r = runner.invoke(app, ["models", "list", *base])
    assert r.exit_code == 0
    lines = {ln.split("│")[1].strip(): ln for ln in r.output.splitlines() if ln.count("│") > 5 and ln.split("│")[1].strip().isdigit()}
    assert "challenger, champion" in lines[v3] and "refused" in lines[v2] and "65.0" in lines[v3]
    r = runner.invoke(app, ["rollback", *base])
    assert r.exit_code == 0 and f"from version {v3} back to {v1}" in r.output
    r = runner.invoke(app, ["rollback", *base])
    assert r.exit_code == 2 and "no previous champion" in r.output


def test_cli_promote_takes_the_profile_gate_and_the_policy_defaults(mlflow_server, model, monkeypatch):
    """`spct promote` with no threshold options uses GatePolicy's defaults; --profile takes that profile's
    gate section (tiny: no parse-rate floor); an option given on the command line wins over both."""
    from typer.testing import CliRunner

    from spct.cli import app
    from spct.cli import pipeline as cli

    monkeypatch.setattr(cli.console, "width", 200)
    name, run_id = model
    c = client_for(mlflow_server)
    base = ["--model", name, "--tracking-uri", mlflow_server]
    v1 = _version(c, run_id, name, _metrics(0.60, parse=0.5))  # half the critiques parse
    r = CliRunner().invoke(app, ["promote", *base])
    floor = GatePolicy().min_parse_rate
    assert r.exit_code == 1 and f"parse rate 0.500 < {floor:.3f}" in r.output
    r = CliRunner().invoke(app, ["promote", *base, "--profile", "tiny", "--min-parse-rate", "0.6"])
    assert r.exit_code == 1 and "parse rate 0.500 < 0.600" in r.output
    r = CliRunner().invoke(app, ["promote", *base, "--profile", "tiny"])
    assert r.exit_code == 0 and "parse rate 0.500 >= 0.000" in r.output
    assert c.get_model_version_by_alias(name, CHAMPION).version == v1
    assert GatePolicy.model_validate_json(c.get_model_version(name, v1).tags["spct.gate.policy"]).min_parse_rate == 0.0
    r = CliRunner().invoke(app, ["promote", *base, "--tolerance", "2"])
    assert r.exit_code == 2 and "--tolerance: Input should be less than or equal to 1" in r.output
