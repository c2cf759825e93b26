"""Every Kustomize overlay renders with a recent kubectl and validates offline; so do the job templates."""

import subprocess
from pathlib import Path

import pytest
import yaml

from spct.k8s import ToolError, tool, validate_rendered
from spct.k8s.settings import ClusterSettings
from spct.pipeline.trainjob import render_job

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "tests" / "crds"
OVERLAYS = sorted(p.name for p in (REPO / "manifests" / "overlays").iterdir() if p.is_dir())


def _kubectl() -> Path:
    try:
        return tool("kubectl")
    except ToolError as e:
        pytest.fail(f"{e} (make test runs `make tools` first)")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request):
    out = subprocess.run([str(_kubectl()), "kustomize", str(REPO / "manifests" / "overlays" / request.param)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return request.param, [d for d in yaml.safe_load_all(out.stdout) if d]


def test_overlay_objects_are_valid(rendered):
    _, objs = rendered
    problems = validate_rendered(objs, [CRDS])
    assert not problems, "\n".join(map(str, problems))
    kinds = {o["kind"] for o in objs} | ({"Namespace"} if rendered[0] == "kubeflow" else set())  # the Profile's
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim", "Deployment", "Service",
            "NetworkPolicy"} <= kinds


def test_everything_lives_in_the_overlay_namespace_with_least_privilege(rendered):
    name, objs = rendered
    ns = next((o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"), "spct")
    assert all(o["metadata"].get("namespace") == ns for o in objs if o["kind"] != "Namespace")
    assert not [o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = next(o for o in objs if o["kind"] == "Role")
    verbs = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"create", "patch"} <= verbs[("serving.kserve.io", "inferenceservices")]
    assert {"create", "get", "watch"} <= verbs[("trainer.kubeflow.org", "trainjobs")]
    assert {"create", "get", "watch"} <= verbs[("kubeflow.org", "pytorchjobs")]
    assert verbs[("", "pods/log")] == {"get", "list", "watch"}
    assert {"create", "patch"} <= verbs[("argoproj.io", "workflowtaskresults")]  # KFP v2 on Argo
    assert all("*" not in v for v in verbs.values())
    # Secrets: only KFP's artifact-store credentials, by name, read-only.
    [secret_rule] = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secret_rule["verbs"] == ["get"] and secret_rule["resourceNames"] == ["mlpipeline-minio-artifact"]
    binding = next(o for o in objs if o["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "spct-pipeline-runner", "namespace": ns}]


def _pods(objs):
    for o in objs:
        if o["kind"] == "Deployment":
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


def _assert_hardened(name, pod):
    assert pod["securityContext"]["runAsNonRoot"] is True, name
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], (name, c["name"])


def test_every_pod_is_non_root_without_escalation(rendered):
    _, objs = rendered
    pods = list(_pods(objs))
    assert pods
    for name, pod in pods:
        _assert_hardened(name, pod)
        env = [e for c in pod["containers"] for e in c.get("env", [])]
        # Credentials come from Secrets, never literal values.
        assert all("valueFrom" in e for e in env if "KEY" in e["name"] or "URI" in e["name"]), name


def test_mlflow_server_uses_sql_backend_and_object_store(rendered):
    _, objs = rendered
    dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "spct-mlflow")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--backend-store-uri" in c["args"][0] and "--artifacts-destination" in c["args"][0]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("spct-mlflow-config"))
    assert cm["data"]["ARTIFACTS_DESTINATION"].startswith("s3://")
    assert c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"]  # the hash suffix is wired through


@pytest.mark.parametrize("kind", ["trainjob", "pytorchjob"])
def test_job_templates_validate_as_written_and_as_rendered(kind):
    raw = (REPO / "manifests" / "jobs" / f"{kind}.yaml").read_text()
    assert not validate_rendered(raw, [CRDS])
    job = render_job(ClusterSettings(job_kind=kind, namespace="spct"), ["grpo", "--profile", "a100"], nodes=4, name=f"spct-grpo-{kind}")
    problems = validate_rendered([job], [CRDS])
    assert not problems, "\n".join(map(str, problems))
    spec = job["spec"]
    pods = ([spec["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]]
            if kind == "trainjob" else [r["template"]["spec"] for r in spec["pytorchReplicaSpecs"].values()])
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["serviceAccountName"] == "spct-trainer"
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_the_image_is_named_in_one_place():
    """settings.py names the image; the chart's repository + appVersion spell it (test_chart_render); the job
    templates carry a placeholder render_job fills in."""
    hits = [p for p in [*REPO.glob("src/**/*.py"), *REPO.glob("components/*.py"), *REPO.glob("pipelines/*.py"),
                        *REPO.glob("manifests/**/*.yaml")] if "ghcr.io/spct/spct" in p.read_text()]
    assert [p.relative_to(REPO).as_posix() for p in hits] == ["src/spct/k8s/settings.py"]
    job = render_job(ClusterSettings(image="reg/spct:9"), ["grpo"], nodes=2, name="j")
    assert job["spec"]["trainer"]["image"] == "reg/spct:9"
