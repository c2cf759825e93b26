"""The deploy step: apply the champion's InferenceService, wait for Ready, roll back if it never gets there.

The object is built from the same values as the Helm chart (``charts/spct-serving``;
:data:`DEFAULT_VALUES` mirrors its ``values.yaml`` and the tests render both and
compare). Applying uses server-side apply through the Kubernetes Python
client's dynamic client; the pipeline runner's Role (manifests/base/rbac.yaml)
grants exactly get/list/watch/create/patch/update on inferenceservices.

Rollback re-applies the spec that was live before (read just before the
apply), which works in both deployment modes: in Serverless mode Knative then
routes to the previous revision again; in RawDeployment mode the Deployment
rolls back to the previous pod template. With no previous object there is
nothing to roll back to and the failed one is left for inspection.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
CHART_NAME, CHART_VERSION, APP_VERSION = "spct-serving", "0.1.0", "0.1.0"
FIELD_MANAGER = "spct-deploy"
PORT = 8080

# Mirrors charts/spct-serving/values.yaml (tests/test_chart_render.py keeps them in step).
DEFAULT_VALUES: dict[str, Any] = {
    "nameOverride": "",
    "fullnameOverride": "",
    "image": {"repository": "ghcr.io/spct/spct", "tag": "0.1.0", "pullPolicy": "IfNotPresent"},
    "imagePullSecrets": [],
    "model": {"name": "spct-grm", "uri": "models:/spct-grm@champion", "storageUri": ""},
    "mlflow": {"trackingUri": "http://spct-mlflow:5000", "credentialsSecret": "spct-mlflow-credentials",
               "objectStoreSecret": "spct-object-store"},
    "deploymentMode": "RawDeployment",
    "canaryTrafficPercent": None,
    "serving": {
        "device": "auto", "dtype": "float32", "batching": True, "maxWaitMs": 10, "maxBatchTokens": 32768,
        "maxBatchRequests": 64, "tokenBudget": 8192, "maxQueue": 256, "timeoutSeconds": 120, "gracePeriodSeconds": 30,
        "maxResponses": 8, "maxK": 32, "maxPromptTokens": 4096,
    },
    "resources": {"requests": {"cpu": "2", "memory": "6Gi"}, "limits": {"cpu": "4", "memory": "8Gi"}},
    "gpu": {"enabled": False, "count": 1, "resourceName": "nvidia.com/gpu"},
    "nodeSelector": {},
    "tolerations": [],
    "affinity": {},
    "podAnnotations": {},
    "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "metric": "cpu", "target": 80},
    "serviceAccount": {"create": True, "name": "", "annotations": {}},
    "networkPolicy": {"enabled": True, "allowNamespaces": ["knative-serving", "istio-system", "kserve", "monitoring"]},
    "cacheSizeLimit": "20Gi",
    "tmpSizeLimit": "1Gi",
    "test": {"enabled": True},
}


class DeployError(RuntimeError):
    """The new InferenceService did not become ready; ``result`` says what was done about it."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


def merge_values(overrides: Mapping[str, Any] | None = None, base: Mapping[str, Any] = DEFAULT_VALUES) -> dict[str, Any]:
    """Helm's rule: maps merge key by key, everything else (lists too) is replaced."""
    out = copy.deepcopy(dict(base))
    for k, v in (overrides or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge_values(v, out[k])
        else:
            out[k] = copy.deepcopy(v)
    return out


def fullname(values: Mapping[str, Any], release: str) -> str:
    """The chart's ``spct-serving.fullname``."""
    def trunc(s: str) -> str:
        return s[:45].rstrip("-")

    if values.get("fullnameOverride"):
        return trunc(values["fullnameOverride"])
    name = values.get("nameOverride") or CHART_NAME
    return trunc(release if name in release else f"{release}-{name}")


def _fmt(v: Any) -> str:
    # How Helm prints a number in a template: 10.0 -> "10", 2.5 -> "2.5".
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def labels(values: Mapping[str, Any], release: str, managed_by: str) -> dict[str, str]:
    return {
        "helm.sh/chart": f"{CHART_NAME}-{CHART_VERSION}",
        "app.kubernetes.io/name": (values.get("nameOverride") or CHART_NAME)[:45].rstrip("-"),
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/version": APP_VERSION,
        "app.kubernetes.io/managed-by": managed_by,
        "app.kubernetes.io/part-of": "spct",
    }


def container_args(values: Mapping[str, Any]) -> list[str]:
    s, m = values["serving"], values["model"]
    source = "/mnt/models" if m.get("storageUri") else m["uri"]
    return [
        f"--model={source}", f"--name={m['name']}", f"--port={PORT}", f"--device={s['device']}", f"--dtype={s['dtype']}",
        "--batching" if s["batching"] else "--no-batching",
        f"--max-wait-ms={_fmt(s['maxWaitMs'])}", f"--max-batch-tokens={s['maxBatchTokens']}",
        f"--max-batch-requests={s['maxBatchRequests']}", f"--token-budget={s['tokenBudget']}", f"--max-queue={s['maxQueue']}",
        f"--timeout-s={s['timeoutSeconds']}", f"--grace-s={s['gracePeriodSeconds']}", f"--max-responses={s['maxResponses']}",
        f"--max-k={s['maxK']}", f"--max-prompt-tokens={s['maxPromptTokens']}", "--cache-dir=/cache/mlflow",
    ]


def build_inference_service(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = CHART_NAME,
    namespace: str | None = None,
    model_uri: str | None = None,
    managed_by: str = FIELD_MANAGER,
) -> dict[str, Any]:
    """The InferenceService the chart renders for ``values`` (merged onto the defaults)."""
    v = merge_values(values)
    if model_uri is not None:
        v["model"]["uri"] = model_uri
    if v.get("canaryTrafficPercent") not in (None, 0) and v["deploymentMode"] != "Serverless":
        raise ValueError("canaryTrafficPercent needs deploymentMode: Serverless (Knative revisions)")
    name = fullname(v, release)
    s, m = v["serving"], v["model"]
    sa = (v["serviceAccount"].get("name") or name) if v["serviceAccount"]["create"] else (v["serviceAccount"].get("name") or "default")
    annotations = {"serving.kserve.io/deploymentMode": v["deploymentMode"]}
    if v["deploymentMode"] == "RawDeployment":
        annotations["serving.kserve.io/autoscalerClass"] = "hpa"
    annotations.update(v.get("podAnnotations") or {})

    resources = copy.deepcopy(v["resources"])
    if v["gpu"]["enabled"]:
        resources.setdefault("limits", {})[v["gpu"]["resourceName"]] = v["gpu"]["count"]
    env = [{"name": "MLFLOW_TRACKING_URI", "value": v["mlflow"]["trackingUri"]}]
    if m.get("storageUri"):
        env.append({"name": "STORAGE_URI", "value": m["storageUri"]})
    env += [
        {"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "HOME", "value": "/tmp"},
        {"name": "SPCT_CACHE", "value": "/cache/spct"}, {"name": "HF_HOME", "value": "/cache/hf"},
        {"name": "XDG_CACHE_HOME", "value": "/cache"},
    ]
    container = {
        "name": "kserve-container",
        "image": f"{v['image']['repository']}:{v['image']['tag']}",
        "imagePullPolicy": v["image"]["pullPolicy"],
        "command": ["spct", "serve"],
        "args": container_args(v),
        "env": env,
        "envFrom": [
            {"secretRef": {"name": v["mlflow"]["credentialsSecret"], "optional": True}},
            {"secretRef": {"name": v["mlflow"]["objectStoreSecret"], "optional": True}},
        ],
        "ports": [{"name": "http1", "containerPort": PORT, "protocol": "TCP"}],
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "startupProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 10, "failureThreshold": 90},
        "readinessProbe": {"httpGet": {"path": f"/v2/models/{m['name']}/ready", "port": PORT}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 20, "failureThreshold": 3},
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    predictor: dict[str, Any] = {
        "serviceAccountName": sa,
        "automountServiceAccountToken": False,
        "minReplicas": v["autoscaling"]["minReplicas"],
        "maxReplicas": v["autoscaling"]["maxReplicas"],
        "scaleMetric": v["autoscaling"]["metric"],
        "scaleTarget": v["autoscaling"]["target"],
    }
    if v.get("canaryTrafficPercent") is not None:
        predictor["canaryTrafficPercent"] = v["canaryTrafficPercent"]
    predictor["timeout"] = s["timeoutSeconds"] + 10
    predictor["terminationGracePeriodSeconds"] = s["gracePeriodSeconds"] + 15
    for key in ("imagePullSecrets", "nodeSelector", "tolerations", "affinity"):
        if v.get(key):
            predictor[key] = copy.deepcopy(v[key])
    predictor["securityContext"] = {
        "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    predictor["containers"] = [container]
    predictor["volumes"] = [
        {"name": "cache", "emptyDir": {"sizeLimit": v["cacheSizeLimit"]}},
        {"name": "tmp", "emptyDir": {"sizeLimit": v["tmpSizeLimit"]}},
    ]
    meta: dict[str, Any] = {"name": name, "labels": labels(v, release, managed_by), "annotations": annotations}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": meta, "spec": {"predictor": predictor}}


# -- readiness and rollback: pure functions over the objects the API server returns -----------------


@dataclass(frozen=True)
class Readiness:
    ready: bool
    failed: bool  # a terminal failure: waiting longer will not help
    reason: str


_TERMINAL = {"BlockedByFailedLoad", "InvalidSpec"}


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def readiness(obj: Mapping[str, Any]) -> Readiness:
    """Whether this generation of the InferenceService is serving, from its status alone."""
    status = obj.get("status") or {}
    gen = (obj.get("metadata") or {}).get("generation")
    seen = status.get("observedGeneration")
    model = status.get("modelStatus") or {}
    if model.get("transitionStatus") in _TERMINAL:
        info = model.get("lastFailureInfo") or {}
        return Readiness(False, True, f"{model['transitionStatus']}: {info.get('reason', '')} {info.get('message', '')}".strip())
    if gen is not None and (seen is None or seen < gen):
        return Readiness(False, False, f"the controller has not observed generation {gen} yet (observed {seen})")
    conds = _conditions(obj)
    ready = conds.get("Ready")
    if ready is None:
        return Readiness(False, False, "no Ready condition yet")
    if ready.get("status") != "True":
        return Readiness(False, False, f"Ready={ready.get('status')}: {ready.get('reason', '')} {ready.get('message', '')}".strip())
    pred = (status.get("components") or {}).get("predictor") or {}
    created, latest_ready = pred.get("latestCreatedRevision"), pred.get("latestReadyRevision")
    if created and latest_ready and created != latest_ready:
        # Serverless: Ready can still refer to the old revision while the new one starts.
        return Readiness(False, False, f"revision {created} is not ready yet (serving {latest_ready})")
    return Readiness(True, False, "Ready")


def rollback_object(previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What to re-apply to go back: the previous object's spec with server-owned fields removed."""
    if not previous:
        return None
    meta = previous.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}
    ann = {k: v for k, v in (keep.get("annotations") or {}).items() if k != "kubectl.kubernetes.io/last-applied-configuration"}
    if ann:
        keep["annotations"] = ann
    else:
        keep.pop("annotations", None)
    return {"apiVersion": previous.get("apiVersion", f"{GROUP}/{VERSION}"), "kind": KIND, "metadata": keep,
            "spec": copy.deepcopy(previous["spec"])}


@dataclass
class WaitResult:
    ready: bool
    reason: str
    seconds: float
    observed: list[str] = field(default_factory=list)


def wait_ready(get: Callable[[], Mapping[str, Any]], timeout_s: float, poll_s: float = 10.0,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> WaitResult:
    """Poll ``get()`` until :func:`readiness` says ready, fails for good, or ``timeout_s`` passes."""
    start = clock()
    seen: list[str] = []
    while True:
        r = readiness(get())
        if not seen or seen[-1] != r.reason:
            seen.append(r.reason)
        if r.ready:
            return WaitResult(True, r.reason, clock() - start, seen)
        if r.failed:
            return WaitResult(False, r.reason, clock() - start, seen)
        if clock() - start >= timeout_s:
            return WaitResult(False, f"not ready after {timeout_s:g} s: {r.reason}", clock() - start, seen)
        sleep(poll_s)


# -- talking to the cluster (needs a real API server) ------------------------------------------------


class Cluster:
    """Server-side apply and reads of InferenceServices through the dynamic client."""

    def __init__(self, api_client: Any = None):
        from kubernetes import client, config
        from kubernetes.dynamic import DynamicClient

        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.resource = DynamicClient(api_client).resources.get(api_version=f"{GROUP}/{VERSION}", kind=KIND)

    def get(self, name: str, namespace: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            return self.resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None

    def apply(self, obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        return self.resource.server_side_apply(
            body=dict(obj), namespace=namespace, field_manager=FIELD_MANAGER, force_conflicts=True
        ).to_dict()


def deploy(
    model_uri: str,
    namespace: str,
    *,
    values: Mapping[str, Any] | None = None,
    release: str = CHART_NAME,
    tracking_uri: str | None = None,
    canary_percent: int | None = None,
    timeout_s: float = 900.0,
    poll_s: float = 10.0,
    apply: bool = True,
    out_dir: Path | None = None,
    cluster: Cluster | None = None,
) -> dict[str, Any]:
    """Create or update the InferenceService for ``model_uri``; wait for Ready; roll back on failure."""
    overrides = merge_values(values or {}, {})
    if tracking_uri:
        overrides = merge_values({"mlflow": {"trackingUri": tracking_uri}}, overrides)
    if canary_percent is not None:
        if not 0 <= canary_percent <= 100:
            raise ValueError(f"canary_percent must be in 0..100, got {canary_percent}")
        overrides = merge_values({"canaryTrafficPercent": canary_percent, "deploymentMode": "Serverless"}, overrides)
    obj = build_inference_service(overrides, release=release, namespace=namespace, model_uri=model_uri)
    name = obj["metadata"]["name"]
    result: dict[str, Any] = {"name": name, "namespace": namespace, "model_uri": model_uri, "applied": False}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "inferenceservice.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=False))
        result["manifest"] = str(path)
    if not apply:
        return result

    cluster = cluster or Cluster()
    previous = cluster.get(name, namespace)
    applied = cluster.apply(obj, namespace)
    result.update(applied=True, generation=(applied.get("metadata") or {}).get("generation"), created=previous is None)
    waited = wait_ready(lambda: cluster.get(name, namespace) or {}, timeout_s, poll_s)
    result.update(ready=waited.ready, reason=waited.reason, wait_s=round(waited.seconds, 1), observed=waited.observed)
    if waited.ready:
        return result
    back = rollback_object(previous)
    if back is None:
        result["rolled_back"] = False
        raise DeployError(f"{namespace}/{name} did not become ready ({waited.reason}); there was no previous "
                          "revision to roll back to, so it is left as is for inspection", result)
    cluster.apply(back, namespace)
    again = wait_ready(lambda: cluster.get(name, namespace) or {}, timeout_s, poll_s)
    result.update(rolled_back=True, rollback_ready=again.ready, rollback_reason=again.reason)
    raise DeployError(f"{namespace}/{name} did not become ready ({waited.reason}); rolled back to the previous spec "
                      f"({'ready' if again.ready else 'NOT ready: ' + again.reason})", result)
