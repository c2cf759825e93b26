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
