"""The deploy step: the chart rendered by real Helm with a pinned model version, readiness from
real-shaped status, the release name shared by every path.

No API server runs here. The statuses below are shaped like what KServe's
controller writes (conditions, modelStatus, per-component revisions) and are
checked against the CRD's status schema first; `helm upgrade --install`, the
reads and `helm rollback` themselves need a real cluster.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from spct.k8s import validate_rendered
from spct.serving import deploy as d

CRDS = Path(__file__).resolve().parent / "crds"


@lru_cache(maxsize=1)
def _rendered() -> str:
    return yaml.safe_dump(d.build_inference_service(namespace="spct", model_uri="models:/spct-grm/2"))


def _base() -> dict:
    return yaml.safe_load(_rendered())  # a fresh copy per status fixture


def _cond(type_: str, status: str, reason: str = "", message: str = "") -> dict:
    c = {"type": type_, "status": status, "lastTransitionTime": "2026-11-23T12:00:00Z"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def isvc(generation: int, observed: int | None, ready: str | None, *, created: str = "grm-predictor-00002",
         latest_ready: str = "grm-predictor-00002", transition: str = "UpToDate", failure: dict | None = None) -> dict:
    obj = _base()
    obj["metadata"]["generation"] = generation
    status: dict = {
        "components": {"predictor": {"latestCreatedRevision": created, "latestReadyRevision": latest_ready,
                                     "url": "http://spct-serving-predictor.spct.svc.cluster.local"}},
        "modelStatus": {"transitionStatus": transition, "states": {"activeModelState": "Loaded" if ready == "True" else "Pending",
                                                                    "targetModelState": "Loaded"}},
        "deploymentMode": "RawDeployment",
    }
    if failure:
        status["modelStatus"]["lastFailureInfo"] = failure
        status["modelStatus"]["states"]["targetModelState"] = "FailedToLoad"
    if observed is not None:
        status["observedGeneration"] = observed
    if ready is not None:
        status["conditions"] = [_cond("PredictorReady", ready), _cond("Ready", ready, "" if ready == "True" else "MinimumReplicasUnavailable",
                                                                       "" if ready == "True" else "Deployment does not have minimum availability.")]
    obj["status"] = status
    return obj


def test_status_fixtures_match_the_crd() -> None:
    objs = [isvc(2, 2, "True"), isvc(2, 1, "True"), isvc(2, 2, "False"),
            isvc(2, 2, "False", transition="BlockedByFailedLoad", failure={"reason": "ModelLoadFailed", "message": "OOM"})]
    assert validate_rendered(objs, [CRDS]) == []


@pytest.mark.parametrize(
    "obj, ready, failed, why",
    [
        (isvc(2, 2, "True"), True, False, "Ready"),
        (isvc(2, 1, "True"), False, False, "not observed generation 2"),  # old generation was ready, new not seen
        (isvc(2, None, None), False, False, "not observed"),
        (isvc(2, 2, None), False, False, "no Ready condition"),
        (isvc(2, 2, "False"), False, False, "MinimumReplicasUnavailable"),
        (isvc(2, 2, "True", created="grm-predictor-00003"), False, False, "grm-predictor-00003 is not ready"),
        (isvc(2, 2, "False", transition="BlockedByFailedLoad", failure={"reason": "ModelLoadFailed", "message": "OOM"}),
         False, True, "BlockedByFailedLoad: ModelLoadFailed OOM"),
        (isvc(2, 2, "Unknown", transition="InvalidSpec"), False, True, "InvalidSpec"),
    ],
)
def test_readiness(obj: dict, ready: bool, failed: bool, why: str) -> None:
    r = d.readiness(obj)
    assert (r.ready, r.failed) == (ready, failed)
    assert why in r.reason


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_wait_until_ready_through_a_rollout() -> None:
    states = iter([isvc(3, 2, "True"), isvc(3, 3, "False"), isvc(3, 3, "True", created="p-4", latest_ready="p-3"),
                   isvc(3, 3, "True", created="p-4", latest_ready="p-4")])
    clock = Clock()
    w = d.wait_ready(lambda: next(states), timeout_s=600, poll_s=10, clock=clock.now, sleep=clock.sleep)
    assert w.ready and w.seconds == 30 and len(w.observed) == 4


def test_wait_stops_on_terminal_failure_and_on_timeout() -> None:
    clock = Clock()
    failing = isvc(2, 2, "False", transition="BlockedByFailedLoad", failure={"reason": "ModelLoadFailed"})
    w = d.wait_ready(lambda: failing, timeout_s=600, poll_s=10, clock=clock.now, sleep=clock.sleep)
    assert not w.ready and clock.t == 0 and "BlockedByFailedLoad" in w.reason
    w = d.wait_ready(lambda: isvc(2, 2, "False"), timeout_s=60, poll_s=10, clock=clock.now, sleep=clock.sleep)
    assert not w.ready and "not ready after 60 s" in w.reason and w.seconds == 60


def test_promotion_changes_the_pod_template_and_rollback_restores_it(tmp_path: Path) -> None:
    """Deploying the promoted version changes the predictor (so KServe rolls out new pods); deploying the
    previous version again (after `spct rollback`) gives back exactly the previous object."""
    def isvc_for(version: int) -> dict:
        out = d.deploy(f"models:/spct-grm/{version}", "spct", profile="a100", image="reg.example.com/spct:0.2.0",
                       tracking_uri="http://spct-mlflow:5000", apply=False, out_dir=tmp_path / str(version))
        return yaml.safe_load(Path(out["manifest"]).read_text())

    v7, v8, v7_again = isvc_for(7), isvc_for(8), isvc_for(7)
    assert v7["spec"] != v8["spec"] and v7 == v7_again
    c7, c8 = v7["spec"]["predictor"]["containers"][0], v8["spec"]["predictor"]["containers"][0]
    assert "--model=models:/spct-grm/7" in c7["args"] and "--model=models:/spct-grm/8" in c8["args"]
    assert c7["image"] == "reg.example.com/spct:0.2.0"  # the pipeline's image, not the chart default
    assert c7["resources"]["limits"]["nvidia.com/gpu"] == 1  # the a100 serving profile, not CPU defaults
    assert v7["metadata"]["name"] == d.RELEASE and validate_rendered([v7, v8], [CRDS]) == []
    rendered = yaml.safe_load_all((tmp_path / "7" / "rendered.yaml").read_text())
    assert {o["kind"] for o in rendered} >= {"InferenceService", "ServiceAccount", "NetworkPolicy"}  # the whole chart
    with pytest.raises(ValueError, match="no tag"):
        d.deploy("models:/spct-grm/7", "spct", image="reg.example.com/spct", apply=False)
    with pytest.raises(ValueError, match="unknown serving profile"):
        d.deploy("models:/spct-grm/7", "spct", profile="h100", apply=False)


def test_one_release_name_everywhere() -> None:
    import inspect

    from spct.cli import serve as cli_serve
    from spct.pipeline.run import compile_pipeline  # noqa: F401 - imports the pipeline wiring

    repo = Path(__file__).resolve().parents[1]
    src = (repo / "pipelines" / "spct_pipeline.py").read_text()
    assert "release=RELEASE" in src
    assert inspect.signature(cli_serve.deploy_command).parameters["release"].default.default == d.RELEASE
    for doc in ("docs/cluster.md",):
        text = (repo / doc).read_text()
        assert f"helm upgrade --install {d.RELEASE} " in text and "helm install grm" not in text


def test_values_merge_like_helm_and_canary(tmp_path: Path) -> None:
    v = d.merge_values({"serving": {"maxK": 8}, "tolerations": [{"key": "a", "operator": "Exists"}]})  # onto values.yaml
    assert v["serving"]["maxK"] == 8 and v["serving"]["maxWaitMs"] == 10 and len(v["tolerations"]) == 1
    out = d.deploy("models:/spct-grm/7", "spct", values={"image": {"tag": "0.2.0"}}, canary_percent=10,
                   tracking_uri="http://mlflow.example:5000", apply=False, out_dir=tmp_path)
    obj = yaml.safe_load(Path(out["manifest"]).read_text())
    p = obj["spec"]["predictor"]
    assert out["applied"] is False and obj["metadata"]["namespace"] == "spct"
    assert p["canaryTrafficPercent"] == 10 and obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert "--model=models:/spct-grm/7" in p["containers"][0]["args"]
    assert p["containers"][0]["image"].endswith(":0.2.0")
    assert {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.example:5000"} in p["containers"][0]["env"]
    # canary needs Serverless; the default metric (cpu) works in both modes
    assert validate_rendered([obj], [CRDS]) == []
    with pytest.raises(ValueError, match="0..100"):
        d.deploy("models:/x/1", "spct", canary_percent=101, apply=False)


def test_deploy_rbac_matches_the_pipeline_role() -> None:
    """Helm creates/updates every object the chart renders and keeps its records in ConfigMaps: the
    runner's Role must grant that (spct.k8s.wiring.runner_needs, what the cluster check holds it to),
    and no Secrets (HELM_DRIVER=configmap)."""
    from spct.k8s import wiring
    from spct.k8s.check import render_overlay

    objs = render_overlay("a100")
    needs = wiring.runner_needs(d.render("models:/spct-grm/3", "spct", profile="a100"), "trainjob", nodes=1)
    assert {("", "configmaps"), (d.GROUP, "inferenceservices")} <= set(needs) and d.HELM_DRIVER == "configmap"
    assert wiring.check_runner_rbac(objs, "spct-pipeline-runner", "spct", needs) == []
    rules = wiring.rules_for(objs, "spct-pipeline-runner", "spct")
    assert not any(wiring.allows(rules, "", "secrets", v) for v in ("get", "list", "create", "update"))


def test_cli_deploy_dry_run(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from spct.cli import app

    gpu = Path(__file__).resolve().parents[1] / "charts" / "spct-serving" / "values-a100.yaml"
    r = CliRunner().invoke(app, ["deploy", "-n", "spct", "--dry-run", "-f", str(gpu), "--set", "image.tag=0.2.0",
                                 "--model-uri", "models:/spct-grm/9", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    obj = yaml.safe_load((tmp_path / "inferenceservice.yaml").read_text())
    c = obj["spec"]["predictor"]["containers"][0]
    assert c["image"].endswith(":0.2.0") and "--model=models:/spct-grm/9" in c["args"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert validate_rendered([obj], [CRDS]) == []
    bad = CliRunner().invoke(app, ["deploy", "-n", "spct", "--dry-run", "--set", "canaryTrafficPercent=5"])
    assert bad.exit_code == 2 and "/canaryTrafficPercent" in bad.output  # the chart's schema names the field


def test_pipeline_deploy_stage_pins_the_version_and_logs_a_nested_run(tmp_path: Path) -> None:
    """The pipeline's deploy step without a cluster: the promoted version's object, valid against the CRD,
    written as a manifest and recorded as a FINISHED nested run under the pipeline run."""
    from spct.pipeline.stages import Tracking, deploy_stage
    from spct.registry import client_for
    from spct.registry.tracking import start_pipeline_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = start_pipeline_run(uri, "spct", "pipeline", {"profile": "tiny"})
    out = deploy_stage("spct-grm", "4", "spct", Tracking(uri, parent), image="reg/spct:0.2.0", profile="default",
                       apply=False, out_dir=tmp_path / "deploy")
    assert out["applied"] is False and out["model_uri"] == "models:/spct-grm/4" and out["release"] == d.RELEASE
    obj = yaml.safe_load(Path(out["manifest"]).read_text())
    c = obj["spec"]["predictor"]["containers"][0]
    assert "--model=models:/spct-grm/4" in c["args"] and c["image"] == "reg/spct:0.2.0"
    assert obj["metadata"]["namespace"] == "spct" and validate_rendered([obj], [CRDS]) == []
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    assert env.get("MLFLOW_TRACKING_URI") == uri
    c_ = client_for(uri)
    [run] = [r for r in c_.search_runs([c_.get_experiment_by_name("spct").experiment_id])
             if r.data.tags.get("mlflow.parentRunId") == parent]
    assert run.info.run_name == "deploy" and run.info.status == "FINISHED"
    assert run.data.tags["spct.deploy.namespace"] == "spct" and run.data.tags["spct.deploy.version"] == "4"


def test_an_alias_is_pinned_to_its_version_before_deploying(tmp_path: Path) -> None:
    """`spct deploy --model-uri models:/spct-grm@champion` deploys the champion's version number, so moving
    the alias and deploying again changes the object (a real MLflow registry, SQLite store)."""
    from spct.registry import client_for
    from spct.registry.tracking import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    c = client_for(uri)
    run = c.create_run(ensure_experiment(c, "spct"))
    c.create_registered_model("spct-grm")
    v1 = c.create_model_version("spct-grm", f"runs:/{run.info.run_id}/grm", run_id=run.info.run_id)
    v2 = c.create_model_version("spct-grm", f"runs:/{run.info.run_id}/grm", run_id=run.info.run_id)
    c.set_registered_model_alias("spct-grm", "champion", v1.version)
    first = d.deploy("models:/spct-grm@champion", "spct", tracking_uri=uri, apply=False, pin=True, out_dir=tmp_path / "a")
    c.set_registered_model_alias("spct-grm", "champion", v2.version)
    second = d.deploy("models:/spct-grm@champion", "spct", tracking_uri=uri, apply=False, pin=True, out_dir=tmp_path / "b")
    assert (first["model_uri"], second["model_uri"]) == (f"models:/spct-grm/{v1.version}", f"models:/spct-grm/{v2.version}")
    a = yaml.safe_load((tmp_path / "a" / "inferenceservice.yaml").read_text())
    b = yaml.safe_load((tmp_path / "b" / "inferenceservice.yaml").read_text())
    assert a["spec"] != b["spec"]
    with pytest.raises(ValueError, match="cannot resolve the alias"):
        d.deploy("models:/spct-grm@nope", "spct", tracking_uri=uri, apply=False, pin=True)
    with pytest.raises(ValueError, match="give the MLflow tracking URI"):
        d.pin_version("models:/spct-grm@champion", None)


def test_rollback_deploy_reuses_the_release_values(tmp_path: Path) -> None:
    """`spct rollback --deploy` changes the model only: `helm upgrade --reuse-values` with model.uri alone."""
    vf = tmp_path / "v.yaml"
    args = d.helm_args(["upgrade", "--reuse-values"], d.RELEASE, "spct", vf, None)
    assert args[1:4] == ["upgrade", "--reuse-values", d.RELEASE] and args[-2:] == ["-f", str(vf)]
    assert not [a for a in args if a.endswith("values-a100.yaml")]  # the live release's values stay as they are


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sure no deploy in a test can reach a real cluster: no in-cluster service account and no kube
    config (the kubernetes client reads its default path at import, so that constant is pointed away too)."""
    from kubernetes.config import kube_config

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "no-kubeconfig"))


def _gated_registry(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A real MLflow registry (SQLite store) with a promoted, a refused and a never-gated version,
    gated by the real promote()."""
    from spct.registry import GateMetrics, GatePolicy, client_for, promote, register_version
    from spct.registry.tracking import ensure_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    c = client_for(uri)
    run = c.create_run(ensure_experiment(c, "spct"))
    src = f"runs:/{run.info.run_id}/grm"

    def version(acc: float) -> str:
        return register_version(c, "spct-grm", src, GateMetrics(acc, 1.0, "sha:g", 64, above_baselines=True),
                                run_id=run.info.run_id).version

    promoted = version(0.80)
    assert promote(c, "spct-grm", promoted, GatePolicy()).promote
    refused = version(0.60)
    assert not promote(c, "spct-grm", refused, GatePolicy()).promote
    never = version(0.90)  # registered, the challenger, never gated
    return uri, {"promoted": promoted, "refused": refused, "never": never}


def test_only_promoted_versions_deploy_unless_forced_with_a_reason(tmp_path: Path, no_cluster: None) -> None:
    """The gate decision is checked before anything is applied; a forced deploy writes who/why/when on the
    version before Helm runs. No cluster here: a deploy that passes the check stops at 'no Kubernetes
    cluster', after the real helm render."""
    from spct.pipeline.stages import Tracking, deploy_stage
    from spct.registry import client_for
    from spct.registry.tracking import start_pipeline_run

    uri, v = _gated_registry(tmp_path)
    c = client_for(uri)

    def forced_tags(version: str) -> dict[str, str]:
        return {k: t for k, t in c.get_model_version("spct-grm", version).tags.items() if k.startswith(d.FORCED_PREFIX)}

    with pytest.raises(d.NotPromoted, match=rf"^spct-grm version {v['refused']} was not promoted by the gate "
                                            r"\(gate decision: refused\); .* --force --reason"):
        d.deploy(f"models:/spct-grm/{v['refused']}", "spct", tracking_uri=uri)
    with pytest.raises(d.NotPromoted, match=r"gate decision: none \(never gated\)"):
        d.deploy("models:/spct-grm@challenger", "spct", tracking_uri=uri)  # the alias is pinned, then checked
    with pytest.raises(d.NotPromoted, match="not a registered model version"):
        d.deploy("s3://bucket/grm", "spct", tracking_uri=uri)
    with pytest.raises(ValueError, match="--force needs --reason"):
        d.deploy(f"models:/spct-grm/{v['refused']}", "spct", tracking_uri=uri, force=True, reason="  ")
    with pytest.raises(ValueError, match="give the MLflow tracking URI"):
        d.deploy(f"models:/spct-grm/{v['promoted']}", "spct")
    # Rendering only changes nothing on a cluster, so it is not gated.
    assert d.deploy(f"models:/spct-grm/{v['refused']}", "spct", apply=False)["applied"] is False

    # The promoted version passes the check (no forced record) and goes on to the cluster, of which there is none.
    with pytest.raises(d.DeployError, match="no Kubernetes cluster") as e:
        d.deploy(f"models:/spct-grm/{v['promoted']}", "spct", tracking_uri=uri)
    assert "forced" not in e.value.result and forced_tags(v["promoted"]) == {}
    # `spct rollback --deploy` keeps the live release's MLflow URI and reads the decision at its own (registry_uri).
    with pytest.raises(d.DeployError, match="no Kubernetes cluster"):
        d.deploy(f"models:/spct-grm/{v['promoted']}", "spct", tracking_uri=None, registry_uri=uri, reuse_values=True)

    with pytest.raises(d.DeployError, match="no Kubernetes cluster") as e:
        d.deploy(f"models:/spct-grm/{v['refused']}", "spct", tracking_uri=uri, force=True,
                 reason="hotfix: v1 crashes on\nlong prompts")
    tags = forced_tags(v["refused"])
    assert tags[f"{d.FORCED_PREFIX}reason"] == "hotfix: v1 crashes on long prompts"  # one line
    assert tags[f"{d.FORCED_PREFIX}decision"] == "refused" and tags[f"{d.FORCED_PREFIX}namespace"] == "spct"
    assert "@" in tags[f"{d.FORCED_PREFIX}by"] and tags[f"{d.FORCED_PREFIX}at"].endswith("Z")
    assert e.value.result["forced"]["recorded"] is True

    # The pipeline's deploy step goes through the same check (it runs only after its gate promoted).
    parent = start_pipeline_run(uri, "spct", "pipeline", {"profile": "tiny"})
    with pytest.raises(d.NotPromoted, match=f"spct-grm version {v['never']} was not promoted"):
        deploy_stage("spct-grm", v["never"], "spct", Tracking(uri, parent), image="reg/spct:0.2.0", profile="default")
    assert forced_tags(v["never"]) == {}


def test_cli_deploy_refuses_an_ungated_version_in_one_line(tmp_path: Path, no_cluster: None) -> None:
    from typer.testing import CliRunner

    from spct.cli import app
    from spct.registry import client_for

    uri, v = _gated_registry(tmp_path)
    base = ["deploy", "-n", "spct", "--tracking-uri", uri, "--model-uri", f"models:/spct-grm/{v['never']}"]
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"error: spct-grm version {v['never']} was not promoted by the gate (gate decision: none (never gated)); "
        'deploy a promoted version, or pass --force --reason "..." to deploy it anyway']
    r = CliRunner().invoke(app, [*base, "--force"])
    assert r.exit_code == 2 and "--force needs --reason" in r.output
    r = CliRunner().invoke(app, [*base, "--force", "--reason", "load test of the new tokenizer"])
    assert r.exit_code == 2 and "no Kubernetes cluster" in r.output  # past the gate, stopped by the missing cluster
    tags = client_for(uri).get_model_version("spct-grm", v["never"]).tags
    assert tags["spct.deploy.forced_reason"] == "load test of the new tokenizer"
    assert tags["spct.deploy.forced_decision"] == "none (never gated)"
