"""``spct cluster check`` passes on every overlay and names the problem on broken variants.

Everything is rendered for real (kfp compiler, kubectl kustomize, helm template); each broken
variant is one of the faults that would otherwise surface only on a cluster.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from spct.k8s.check import PREREQUISITES, check, host_header, render_overlay
from spct.k8s.settings import ClusterSettings

REPO = Path(__file__).resolve().parents[1]
OVERLAYS = sorted(p.name for p in (REPO / "manifests" / "overlays").iterdir() if p.is_dir())
# The run parameters each overlay is submitted with (docs/cluster.md).
PARAMS = {"dev": {"namespace": "spct-dev"}}


@pytest.fixture(scope="module")
def a100_objects():
    return render_overlay("a100")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_passes(overlay: str) -> None:
    problems = check(overlay, params=PARAMS.get(overlay, {}))
    assert problems == [], "\n".join(map(str, problems))


def _messages(problems) -> str:
    return "\n".join(map(str, problems))


def test_missing_pvc(a100_objects) -> None:
    out = _messages(check(objects=a100_objects, settings=ClusterSettings(data_pvc="spct-datasets")))
    assert "pipeline task curate: PersistentVolumeClaim spct-datasets is not declared by the overlay" in out
    assert "TrainJob node" in out  # the job templates mount it too


def test_missing_secret(a100_objects) -> None:
    out = _messages(check(objects=a100_objects, settings=ClusterSettings(mlflow_secret="spct-mlflow-creds")))
    assert "pipeline task register: Secret spct-mlflow-creds is neither rendered nor a prerequisite" in out
    prereq = yaml.safe_load(PREREQUISITES.read_text())
    del prereq["secrets"]["spct-mlflow-reader"]
    out = _messages(check(objects=a100_objects, prerequisites=prereq))
    assert "chart InferenceService/spct-serving: Secret spct-mlflow-reader is neither rendered nor a prerequisite" in out
    prereq = yaml.safe_load(PREREQUISITES.read_text())
    prereq["secrets"]["spct-mlflow-server"].remove("flask-secret-key")
    out = _messages(check(objects=a100_objects, prerequisites=prereq))
    assert "Deployment/spct-mlflow: Secret spct-mlflow-server has no key flask-secret-key" in out


def test_host_without_port(a100_objects) -> None:
    """The server's --allowed-hosts as it was before issue 12: names without the Service port."""
    objs = copy.deepcopy(a100_objects)
    c = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    c["args"] = [c["args"][0].replace(":5000", "")]
    out = _messages(check(objects=objs))
    assert ("pipeline parameter tracking_uri: MLflow refuses Host spct-mlflow:5000 (from http://spct-mlflow:5000): "
            "not in the server's --allowed-hosts") in out
    assert "chart InferenceService/spct-serving MLFLOW_TRACKING_URI: MLflow refuses Host spct-mlflow:5000" in out
    assert host_header("http://spct-mlflow.spct.svc.cluster.local:5000") == "spct-mlflow.spct.svc.cluster.local:5000"
    out = _messages(check(objects=a100_objects, params={"tracking_uri": "http://spct-mlflow:8080"}))
    assert "uses port 8080; Service spct-mlflow listens on 5000" in out


def test_gpu_request_on_a_cpu_pool(a100_objects) -> None:
    out = _messages(check(objects=a100_objects,
                          params={"gpu_node_selector": {"node.kubernetes.io/instance-type": "n2-standard-32"}}))
    assert "pipeline task grpo: requests 8 GPUs on node pool cpu, whose nodes have 0" in out
    out = _messages(check(objects=a100_objects, settings=ClusterSettings(gpus=16)))
    assert "requests 16 GPUs on node pool a100, whose nodes have 8" in out
    out = _messages(check(objects=a100_objects, params={"gpu_tolerations": []}))
    assert "pipeline task evaluate: does not tolerate taint nvidia.com/gpu:NoSchedule of node pool a100" in out


def test_unmounted_input_path(a100_objects) -> None:
    out = _messages(check(objects=a100_objects, params={"sources": ["/datasets/train"], "base_model": "/opt/models/g"}))
    assert "pipeline task curate: reads source /datasets/train, which lies on no volume it mounts (/data)" in out
    assert "pipeline task rft: reads base model /opt/models/g, which lies on no volume it mounts" in out


def test_pod_security_restricted_namespace(a100_objects) -> None:
    objs = copy.deepcopy(a100_objects)
    ns = next(o for o in objs if o["kind"] == "Namespace")
    ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    out = _messages(check(objects=objs))
    # KFP-compiled task pods carry no securityContext of spct's: they need "baseline"
    assert "pipeline task curate: breaks Pod Security 'restricted' enforced on namespace spct" in out
    assert "Deployment/spct-mlflow" not in out and "InferenceService" not in out  # spct's own pods meet it


def test_cli_one_line_per_problem_and_exit_codes() -> None:
    from spct.cli import app

    ok = CliRunner().invoke(app, ["cluster", "check", "--overlay", "a100"])
    assert ok.exit_code == 0 and "agree" in ok.output, ok.output
    bad = CliRunner().invoke(app, ["cluster", "check", "--overlay", "a100", "-s", "checkpoint_pvc=ckpt",
                                   "-p", "sources=[/datasets/x]"])
    assert bad.exit_code == 1
    lines = [ln for ln in bad.output.splitlines() if ": " in ln and "problem(s)" not in ln]
    assert any("PersistentVolumeClaim ckpt is not declared" in ln for ln in lines)
    assert any("reads source /datasets/x" in ln for ln in lines)
    typo = CliRunner().invoke(app, ["cluster", "check", "-s", "gpus_per_node=4"])
    assert typo.exit_code == 2 and "gpus_per_node" in typo.output
    missing = CliRunner().invoke(app, ["cluster", "check", "--overlay", "nope"])
    assert missing.exit_code == 2 and "no kustomization.yaml" in missing.output


def test_vllm_serving_profile_and_storage_credentials(a100_objects) -> None:
    engine = {"storageUri": "s3://spct-mlflow/artifacts/1/models/m-1/artifacts/data/grm"}
    out = _messages(check(objects=a100_objects, serving_profile="vllm", serving_values={"engine": engine}))
    assert "chart InferenceService/spct-serving-engine: storageUri s3://" in out and "storage.secretName" in out
    ok = check(objects=a100_objects, serving_profile="vllm",
               serving_values={"engine": engine, "storage": {"secretName": "spct-model-store"}})
    assert ok == [], _messages(ok)


def test_multinode_launchers_and_job_nodes(a100_objects) -> None:
    """With nodes > 1 the launcher pods hold no GPUs and no model volume; the job's nodes load the base model."""
    assert check(objects=a100_objects, settings=ClusterSettings(nodes=4)) == []
    out = _messages(check(objects=a100_objects, settings=ClusterSettings(nodes=4), params={"base_model": "/opt/models/g"}))
    assert "TrainJob node (node): reads base model /opt/models/g, which lies on no volume it mounts" in out
    assert "pipeline task rft" not in out


def test_images_agree_everywhere(a100_objects) -> None:
    from spct.k8s.check import check_images
    from spct.serving import deploy

    assert check(objects=a100_objects, params={"image": "reg.example.com/ml/spct:0.2.0"}) == []
    chart = deploy.render("models:/spct-grm/1", "spct", profile="a100", image="reg.example.com/ml/spct:0.2.0")
    pod = next(o for o in chart if o["kind"] == "Pod")
    pod["spec"]["containers"][0]["image"] = "reg.example.com/ml/spct:"  # the helm test pod with an empty tag
    out = _messages(check_images("reg.example.com/ml/spct:0.2.0", [], [], chart))
    assert "chart Pod/spct-serving-test-judge: runs image 'reg.example.com/ml/spct:', not the run's image" in out
    assert "is not REPOSITORY:TAG" in _messages(check_images("spct", [], [], []))


def test_a_compiled_cold_start_with_zero_steps(a100_objects) -> None:
    out = _messages(check(objects=a100_objects, coldstart=True))
    assert "pipeline task coldstart: coldstart_steps is 0: the task would hold 8 GPUs for a no-op" in out
    assert check(objects=a100_objects, coldstart=True, params={"coldstart_steps": 200}) == []


def test_the_runbooks_loader_pod_is_valid_and_mounts_the_overlays_claims(a100_objects) -> None:
    """docs/cluster.md step 6: the throw-away pod that fills the volumes, as a user pastes it ($REG set)."""
    import re

    from spct.k8s import validate_rendered
    from spct.k8s.check import baseline_violations, check_references, inventory, pod_view, restricted_violations

    text = (REPO / "docs" / "cluster.md").read_text()
    block = re.search(r"kubectl -n spct apply -f - <<EOF\n(.*?)\nEOF\n", text, re.S).group(1)
    pod = yaml.safe_load(block.replace("$REG", "registry.example.com/ml"))
    pod["metadata"]["namespace"] = "spct"
    assert validate_rendered([pod], []) == []
    inv = inventory(a100_objects, yaml.safe_load(PREREQUISITES.read_text()))
    view = pod_view("loader", pod["spec"])
    assert check_references(view, inv) == [] and set(view.mounts.values()) == {"spct-model-cache", "spct-data"}
    assert baseline_violations(pod["spec"]) == [] and restricted_violations(pod["spec"]) == []


def test_a_private_registrys_pull_secret_reaches_every_pod(a100_objects) -> None:
    """`-s image_pull_secrets=...`: every task pod, job pod and the predictor pull with it; once the Secret
    is declared the configuration passes, and without it each of them is named (tests/test_cluster_corpus.py)."""
    from spct.k8s.check import _chart_pods, _job_pods, _task_pods, compile_ir
    from spct.serving import deploy

    s = ClusterSettings(image_pull_secrets=("regcred",), nodes=2)
    pipeline, platform = compile_ir(s, {}, False)
    pods = [v for _, v in _task_pods(pipeline, platform, s, {})] + _job_pods(s, 2)
    pods += _chart_pods(deploy.render("models:/spct-grm/1", "spct", profile="a100", values=deploy.with_pull_secrets({}, ["regcred"])))
    assert len(pods) > 10 and all(p.spec.get("imagePullSecrets") == [{"name": "regcred"}] for p in pods), \
        [p.where for p in pods if p.spec.get("imagePullSecrets") != [{"name": "regcred"}]]
    prereq = yaml.safe_load(PREREQUISITES.read_text())
    prereq["secrets"]["regcred"] = [".dockerconfigjson"]
    assert check(objects=copy.deepcopy(a100_objects), settings=s, prerequisites=prereq) == []
