"""The Helm chart: lint, render (default and GPU/production values), offline schema validation.

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate),
the InferenceService against KServe's CRD schema (tests/crds). Nothing here needs a
cluster; what only a cluster can check (admission webhooks, the KServe controller
reconciling the object, the helm test pod actually reaching the predictor) is listed
in docs/serving.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from spct.k8s import ToolError, tool, validate_rendered
from spct.serving import deploy
from spct.serving.protocol import parse_v1, parse_v2

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "spct-serving"
GPU = CHART / "values-a100.yaml"
CRDS = REPO / "tests" / "crds"


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return tool("helm")
    except ToolError as e:
        pytest.fail(f"{e} (make test runs `make tools` first)")


def run(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


def render(helm: Path, *args: str) -> str:
    r = run(helm, "template", "grm", str(CHART), "--namespace", "spct", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def objects(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("values", [[], ["-f", str(GPU)]], ids=["default", "a100"])
def test_lint_strict(helm: Path, values: list[str]) -> None:
    r = run(helm, "lint", "--strict", str(CHART), *values)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "values",
    [[], ["-f", str(GPU)], ["--set", "deploymentMode=Serverless", "--set", "canaryTrafficPercent=10",
                            "--set", "autoscaling.metric=rps", "--set", "model.storageUri=s3://models/grm/3"]],
    ids=["default", "a100", "serverless-canary-storageuri"],
)
def test_every_rendered_object_validates(helm: Path, values: list[str]) -> None:
    text = render(helm, *values)
    kinds = sorted(o["kind"] for o in objects(text))
    assert kinds == ["InferenceService", "NetworkPolicy", "Pod", "ServiceAccount"]
    assert validate_rendered(text, [CRDS]) == []


def test_gpu_values_render_a100_settings(helm: Path) -> None:
    isvc = next(o for o in objects(render(helm, "-f", str(GPU))) if o["kind"] == "InferenceService")
    p = isvc["spec"]["predictor"]
    assert p["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert p["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert p["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert "--dtype=bfloat16" in p["containers"][0]["args"]


def test_restricted_security_context(helm: Path) -> None:
    objs = objects(render(helm))
    p = next(o for o in objs if o["kind"] == "InferenceService")["spec"]["predictor"]
    c = p["containers"][0]["securityContext"]
    assert c["readOnlyRootFilesystem"] and not c["allowPrivilegeEscalation"] and c["capabilities"]["drop"] == ["ALL"]
    assert p["securityContext"]["runAsNonRoot"] and p["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    mounts = {m["mountPath"] for m in p["containers"][0]["volumeMounts"]}
    assert mounts == {"/cache", "/tmp"} and all("emptyDir" in v for v in p["volumes"])


def test_image_is_named_once(helm: Path) -> None:
    """The chart's default image is spct.k8s.settings.DEFAULT_IMAGE (repository + appVersion), not a copy."""
    from spct.k8s.settings import DEFAULT_IMAGE

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{chart['appVersion']}" == DEFAULT_IMAGE and values["image"]["tag"] == ""
    objs = objects(render(helm))
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == DEFAULT_IMAGE
    assert next(o for o in objs if o["kind"] == "Pod")["spec"]["containers"][0]["image"] == DEFAULT_IMAGE  # helm test
    assert "tag" not in yaml.safe_load(GPU.read_text()).get("image", {})


def test_a100_values_fit_a_27b_model(helm: Path) -> None:
    """bf16 27B is ~54 GB: the MLflow download cache and host memory must hold it, and the startup
    probe must allow its download and load (15 minutes did not)."""
    p = next(o for o in objects(render(helm, "-f", str(GPU))) if o["kind"] == "InferenceService")["spec"]["predictor"]
    cache = next(v for v in p["volumes"] if v["name"] == "cache")["emptyDir"]["sizeLimit"]
    assert int(cache.removesuffix("Gi")) >= 80
    c = p["containers"][0]
    assert int(c["resources"]["limits"]["memory"].removesuffix("Gi")) >= 80
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 3600


def test_credentials_only_where_used(helm: Path) -> None:
    """The predictor gets the MLflow reader's credentials (required: the server authenticates) and no
    object-store keys; a storage Secret goes on the ServiceAccount, for KServe's storage initializer only;
    the API token Secret becomes SPCT_API_TOKEN."""
    objs = objects(render(helm, "--set", "model.storageUri=s3://spct-mlflow/artifacts/1/models/m-1/artifacts",
                          "--set", "storage.secretName=spct-model-store", "--set", "apiToken.secretName=spct-api-token"))
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    c = isvc["spec"]["predictor"]["containers"][0]
    assert c["envFrom"] == [{"secretRef": {"name": "spct-mlflow-reader"}}]
    assert {"name": "SPCT_HOST", "value": "0.0.0.0"} in c["env"]  # spct serve binds loopback unless told
    assert not [e for e in c["env"] if e["name"].startswith("AWS_")]
    token = next(e for e in c["env"] if e["name"] == "SPCT_API_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "spct-api-token", "key": "token"}
    sa = next(o for o in objs if o["kind"] == "ServiceAccount")
    assert sa["secrets"] == [{"name": "spct-model-store"}] and isvc["spec"]["predictor"]["serviceAccountName"] == sa["metadata"]["name"]
    assert "--model=/mnt/models" in c["args"]
    plain = objects(render(helm))
    assert "secrets" not in next(o for o in plain if o["kind"] == "ServiceAccount")
    assert not [e for e in next(o for o in plain if o["kind"] == "InferenceService")["spec"]["predictor"]["containers"][0]["env"]
                if e["name"] == "SPCT_API_TOKEN"]
    assert validate_rendered(objs, [CRDS]) == []


def test_deploy_object_validates_against_the_crd() -> None:
    obj = deploy.build_inference_service({"deploymentMode": "Serverless", "autoscaling": {"metric": "concurrency"},
                                          "canaryTrafficPercent": 20}, namespace="spct", model_uri="models:/spct-grm/3")
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert validate_rendered([obj], [CRDS]) == []
    with pytest.raises(ValueError, match="canaryTrafficPercent"):
        deploy.build_inference_service({"canaryTrafficPercent": 10})


@pytest.mark.parametrize(
    "setting, where",
    [
        ("deploymentMode=Knative", "/deploymentMode"),
        ("autoscaling.metric=rps", "/autoscaling/metric"),  # rps needs Serverless
        ("serving.maxK=64", "/serving/maxK"),
        ("model.uri=s3://bucket/grm", "/model/uri"),
        ("resources.limits.memory=lots", "/resources/limits/memory"),
        ("gpu.count=0", "/gpu/count"),
        ("serving.dtype=int4", "/serving/dtype"),
        ("typo=1", "typo"),
    ],
)
def test_values_schema_rejects_bad_values(helm: Path, setting: str, where: str) -> None:
    r = run(helm, "template", "grm", str(CHART), "--set", setting)
    assert r.returncode != 0
    assert where in r.stderr, r.stderr


def test_validator_is_not_vacuous(helm: Path) -> None:
    objs = objects(render(helm))
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    isvc["spec"]["predictor"]["scaleMetric"] = "gpu"
    isvc["spec"]["predictor"]["containers"][0]["bogusField"] = 1
    pol = next(o for o in objs if o["kind"] == "NetworkPolicy")
    pol["spec"]["policyTypes"] = "Ingress"
    problems = [str(p) for p in validate_rendered(objs, [CRDS])]
    assert any("scaleMetric" in p for p in problems), problems
    assert any("bogusField" in p for p in problems), problems
    assert any("NetworkPolicy" in p and "policyTypes" in p for p in problems), problems
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no schema" in str(validate_rendered([unknown], [CRDS])[0])


def test_notes_request_examples_are_valid_requests(helm: Path) -> None:
    r = run(helm, "install", "grm", str(CHART), "--namespace", "spct", "--dry-run=client")
    assert r.returncode == 0, r.stderr
    notes = r.stdout.split("NOTES:", 1)[1]
    bodies = [json.loads(m) for m in re.findall(r"-d '(\{.*?\})'", notes, re.S)]
    assert len(bodies) == 2
    assert parse_v1(bodies[0])[0].k == 4
    assert parse_v2(bodies[1]).responses == ("4", "5")
    assert "/v1/models/spct-grm:predict" in notes and "/v2/models/spct-grm/infer" in notes


def test_helm_test_pod_sends_a_valid_judge_request(helm: Path) -> None:
    pod = next(o for o in objects(render(helm)) if o["kind"] == "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    body = json.loads(re.search(r"body = (\{.*\})\n", script).group(1))
    assert parse_v1(body)[0].responses == ("4", "5")
    assert "grm-spct-serving-predictor.spct.svc.cluster.local/v1/models/spct-grm:predict" in script



def test_helm_test_pod_carries_the_token_and_passes_against_a_real_predictor(helm: Path, tmp_path: Path) -> None:
    """With ``apiToken`` set the predictor answers 401 to a request without it: the helm test pod
    reads the same Secret and sends it. Its script runs here against a real ``spct serve`` (the tiny
    model) with only the Service URL pointed at loopback."""
    import os
    import sys

    from serving_fixture import TOKEN, Server, make_bundle

    objs = objects(render(helm, "--set", "apiToken.secretName=spct-api-token"))
    pod = next(o for o in objs if o["kind"] == "Pod")
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    want = next(e for e in isvc["spec"]["predictor"]["containers"][0]["env"] if e["name"] == "SPCT_API_TOKEN")
    assert pod["spec"]["containers"][0]["env"] == [want]  # the predictor's Secret and key
    script = pod["spec"]["containers"][0]["args"][0]
    server = Server(make_bundle(tmp_path), tmp_path / "server.log").wait_ready()
    try:
        local = re.sub(r"http://[^/]+/", f"{server.url}/", script, count=1)
        assert local != script
        env = {k: v for k, v in os.environ.items() if k != "SPCT_API_TOKEN"}
        ok = subprocess.run([sys.executable, "-c", local], env=env | {"SPCT_API_TOKEN": TOKEN},
                            capture_output=True, text=True, timeout=300)
        assert ok.returncode == 0 and "judge ok: spct-grm" in ok.stdout, ok.stderr
        refused = subprocess.run([sys.executable, "-c", local], env=env, capture_output=True, text=True, timeout=300)
        assert refused.returncode != 0 and "401" in refused.stderr  # what the pod did before it sent the token
    finally:
        server.stop()
    assert "env" not in next(o for o in objects(render(helm)) if o["kind"] == "Pod")["spec"]["containers"][0]


VLLM = CHART / "values-vllm.yaml"


def test_vllm_engine_profile(helm: Path) -> None:
    """Issue 13: the GRM's generation on KServe's Hugging Face runtime (vLLM), spct's predictor over it on CPU."""
    text = render(helm, "-f", str(GPU), "-f", str(VLLM), "--set", "engine.storageUri=s3://spct-mlflow/artifacts/1/grm")
    assert validate_rendered(text, [CRDS]) == []
    objs = objects(text)
    engine = next(o for o in objs if o["kind"] == "InferenceService" and o["metadata"]["name"] == "grm-spct-serving-engine")
    pred = next(o for o in objs if o["kind"] == "InferenceService" and o["metadata"]["name"] == "grm-spct-serving")
    m = engine["spec"]["predictor"]["model"]
    assert m["modelFormat"] == {"name": "huggingface"} and m["runtime"] == "kserve-huggingfaceserver"
    assert {"--tensor-parallel-size=2", "--max-model-len=8192", "--gpu-memory-utilization=0.9", "--dtype=bfloat16",
            "--enable-prefix-caching"} <= set(m["args"])
    assert m["resources"]["limits"]["nvidia.com/gpu"] == 2  # one GPU per tensor-parallel rank
    assert engine["spec"]["predictor"]["volumes"][0]["emptyDir"]["medium"] == "Memory"  # /dev/shm for NCCL
    assert engine["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    c = pred["spec"]["predictor"]["containers"][0]
    assert "--engine=openai:http://grm-spct-serving-engine-predictor.spct.svc.cluster.local/openai/v1" in c["args"]
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {}) and "--device=cpu" in c["args"]
    assert "nodeSelector" not in pred["spec"]["predictor"]  # the CPU layer does not sit on GPU nodes
    assert {o["metadata"]["name"] for o in objs if o["kind"] == "NetworkPolicy"} == {"grm-spct-serving", "grm-spct-serving-engine"}
    r = run(helm, "template", "grm", str(CHART), "-f", str(GPU), "-f", str(VLLM))
    assert r.returncode != 0 and "engine.storageUri" in r.stderr
    r = run(helm, "template", "grm", str(CHART), "-f", str(GPU), "-f", str(VLLM), "--set", "engine.storageUri=s3://b/g",
            "--set", "engine.gpuMemoryUtilization=1.5")
    assert r.returncode != 0 and "/engine/gpuMemoryUtilization" in r.stderr
