"""``spct cluster check``: do the pipeline, the Kustomize overlay, the serving chart and the job
templates agree with each other and with what the cluster provides, before anything is applied?

Everything is rendered with the real tools (kfp's compiler, ``kubectl kustomize``, ``helm
template``) for one set of settings and values, then cross-checked:

- every Secret, PVC, ServiceAccount, ConfigMap and ClusterTrainingRuntime a pod refers to is
  rendered by the overlay/chart or declared in ``manifests/prerequisites.yaml`` (with the key);
- every path a task reads (``sources``, the base model, the profile's ``eval.data``) lies on a
  volume that task mounts;
- the MLflow URI the pipeline and predictor use names the overlay's Service and port, and the
  Host header it produces passes the server's ``--allowed-hosts`` (MLflow's own matcher);
- every GPU pod's node selector matches a node pool with enough GPUs, CPU and memory, and
  tolerates its taints;
- every pod meets the namespace's Pod Security ``enforce`` level.

Each problem is one line naming the object and what is wrong. No API server is contacted.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import ValidationError

from spct.k8s import wiring
from spct.k8s.settings import ClusterSettings
from spct.k8s.wiring import quantity

REPO = Path(__file__).resolve().parents[3]
PREREQUISITES = REPO / "manifests" / "prerequisites.yaml"
OVERLAYS = REPO / "manifests" / "overlays"


@dataclass(frozen=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Inventory:
    """What exists: rendered by the overlay or chart, or declared as a prerequisite."""

    namespace: str
    secrets: dict[str, set[str] | None] = field(default_factory=dict)  # None: keys unknown (rendered)
    pvcs: set[str] = field(default_factory=set)
    service_accounts: set[str] = field(default_factory=set)
    config_maps: dict[str, set[str]] = field(default_factory=dict)
    services: dict[str, set[int]] = field(default_factory=dict)
    runtimes: set[str] = field(default_factory=set)
    pools: list[dict[str, Any]] = field(default_factory=list)
    pod_security: str | None = None  # enforce level of the namespace, when the overlay sets it
    knative_features: dict[str, str] = field(default_factory=dict)  # Knative Serving's config-features data
    serving_runtimes: set[str] = field(default_factory=set)  # KServe ClusterServingRuntimes


# -- rendering --------------------------------------------------------------------------------------


def render_overlay(overlay: str | Path) -> list[dict[str, Any]]:
    from spct.k8s.tools import tool

    path = Path(overlay)
    if not path.is_dir():
        path = OVERLAYS / str(overlay)
    if not (path / "kustomization.yaml").is_file():
        raise FileNotFoundError(f"{overlay}: no kustomization.yaml (overlays: {', '.join(sorted(p.name for p in OVERLAYS.iterdir()))})")
    out = subprocess.run([str(tool("kubectl")), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise ValueError(f"kubectl kustomize {path}: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def compile_ir(settings: ClusterSettings, params: Mapping[str, Any], coldstart: bool) -> tuple[dict, dict]:
    """The compiled pipeline and its Kubernetes executor settings for these settings and parameters."""
    fields = json.dumps(settings.model_dump(mode="json", exclude_unset=True), sort_keys=True)
    text = _compiled(fields, json.dumps(dict(params), sort_keys=True, default=str), coldstart)
    pipeline, platform = list(yaml.safe_load_all(text))
    return pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@functools.lru_cache(maxsize=32)
def _compiled(fields: str, params: str, coldstart: bool) -> str:
    # A pure function of its arguments; kept for repeated checks in one process (the mis-wiring
    # corpus runs dozens), returned as text so no caller can change what the next one gets.
    from spct.pipeline.run import compile_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        out = compile_pipeline(Path(tmp) / "spct.yaml", json.loads(params), coldstart=coldstart, **json.loads(fields))
        return out.read_text()


def inventory(objs: Iterable[Mapping[str, Any]], prerequisites: Mapping[str, Any]) -> Inventory:
    objs = list(objs)
    ns_obj = next((o for o in objs if o["kind"] == "Namespace"), None)
    namespace = (ns_obj or {}).get("metadata", {}).get("name") or next(
        (o["metadata"].get("namespace") for o in objs if o["metadata"].get("namespace")), "default")
    inv = Inventory(namespace=namespace)
    if ns_obj:
        inv.pod_security = (ns_obj["metadata"].get("labels") or {}).get("pod-security.kubernetes.io/enforce")
    for o in objs:
        name = o["metadata"]["name"]
        kind = o["kind"]
        if kind == "Secret":
            inv.secrets[name] = set((o.get("data") or {}) | (o.get("stringData") or {}))
        elif kind == "PersistentVolumeClaim":
            inv.pvcs.add(name)
        elif kind == "ServiceAccount":
            inv.service_accounts.add(name)
        elif kind == "ConfigMap":
            inv.config_maps[name] = set(o.get("data") or {})
        elif kind == "Service":
            inv.services[name] = {int(p["port"]) for p in o["spec"].get("ports", [])}
    for name, keys in (prerequisites.get("secrets") or {}).items():
        inv.secrets.setdefault(name, set(keys or []))
    inv.runtimes = set(prerequisites.get("clusterTrainingRuntimes") or [])
    inv.pools = list(prerequisites.get("nodePools") or [])
    inv.knative_features = {str(k): str(v) for k, v in (prerequisites.get("knativeFeatures") or {}).items()}
    inv.serving_runtimes = set(prerequisites.get("clusterServingRuntimes") or [])
    return inv


# -- pods -------------------------------------------------------------------------------------------


@dataclass
class PodView:
    """The parts of a pod the checks look at, from any of the shapes spct renders."""

    where: str
    spec: dict[str, Any]
    mounts: dict[str, str] = field(default_factory=dict)  # mountPath -> PVC claim (or "" for other volumes)
    gpus: int = 0
    cpu: float = 0.0
    memory_gi: float = 0.0


def pod_view(where: str, spec: Mapping[str, Any], accelerator: str = "nvidia.com/gpu") -> PodView:
    claims = {v["name"]: (v.get("persistentVolumeClaim") or {}).get("claimName", "") for v in spec.get("volumes", [])}
    view = PodView(where, dict(spec))
    for c in spec.get("containers", []):
        for m in c.get("volumeMounts", []):
            view.mounts[m["mountPath"]] = claims.get(m["name"], "")
        req = (c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits") or {}
        lim = (c.get("resources") or {}).get("limits") or {}
        view.gpus += int(lim.get(accelerator, req.get(accelerator, 0)) or 0)
        view.cpu += quantity(req.get("cpu", 0))
        view.memory_gi += quantity(req.get("memory", 0)) / 2**30
    return view


def _env_secret_refs(spec: Mapping[str, Any]) -> list[tuple[str, str | None, bool]]:
    """``(secret, key or None for envFrom, optional)`` for every container of a pod spec."""
    out = []
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                out.append((ref["name"], ref["key"], bool(ref.get("optional"))))
        for e in c.get("envFrom", []):
            if "secretRef" in e:
                out.append((e["secretRef"]["name"], None, bool(e["secretRef"].get("optional"))))
    return out


def _configmap_refs(spec: Mapping[str, Any]) -> list[str]:
    refs = [e["configMapRef"]["name"] for c in spec.get("containers", []) for e in c.get("envFrom", []) if "configMapRef" in e]
    refs += [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
    return refs


# -- the checks -------------------------------------------------------------------------------------


def check_references(pod: PodView, inv: Inventory) -> list[Problem]:
    problems = []
    for secret, key, optional in _env_secret_refs(pod.spec):
        if secret not in inv.secrets:
            if not optional:
                problems.append(Problem(pod.where, f"Secret {secret} is neither rendered nor a prerequisite "
                                                   "(manifests/prerequisites.yaml)"))
        elif key is not None and inv.secrets[secret] is not None and key not in inv.secrets[secret]:
            problems.append(Problem(pod.where, f"Secret {secret} has no key {key} (prerequisite keys: "
                                               f"{', '.join(sorted(inv.secrets[secret]))})"))
    for claim in {c for c in pod.mounts.values() if c}:
        if claim not in inv.pvcs:
            problems.append(Problem(pod.where, f"PersistentVolumeClaim {claim} is not declared by the overlay"))
    for v in pod.spec.get("volumes", []):
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim not in inv.pvcs and claim not in pod.mounts.values():
            problems.append(Problem(pod.where, f"PersistentVolumeClaim {claim} is not declared by the overlay"))
    for ref in pod.spec.get("imagePullSecrets") or []:
        if ref["name"] not in inv.secrets:
            problems.append(Problem(pod.where, f"imagePullSecrets: Secret {ref['name']} is neither rendered nor a "
                                               "prerequisite (manifests/prerequisites.yaml)"))
    sa = pod.spec.get("serviceAccountName")
    if sa and sa not in inv.service_accounts:
        problems.append(Problem(pod.where, f"ServiceAccount {sa} is not declared by the overlay or chart"))
    for cm in _configmap_refs(pod.spec):
        if cm not in inv.config_maps:
            problems.append(Problem(pod.where, f"ConfigMap {cm} is not rendered"))
    for c in pod.spec.get("containers", []):
        if not c.get("image"):
            problems.append(Problem(pod.where, f"container {c.get('name')} has no image"))
    return problems


def check_path(where: str, path: str, mounts: Mapping[str, str], what: str) -> list[Problem]:
    """A local path a task reads must lie under one of its mounts (specs and URLs are not paths)."""
    if not path.startswith("/"):
        return []
    if any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts):
        return []
    return [Problem(where, f"reads {what} {path}, which lies on no volume it mounts "
                           f"({', '.join(sorted(mounts)) or 'none'})")]


def check_pool(pod: PodView, inv: Inventory) -> list[Problem]:
    """A GPU pod's node selector must select a pool with enough GPUs, CPU and memory, whose taints it tolerates."""
    if pod.gpus == 0:
        return []
    selector = pod.spec.get("nodeSelector") or {}
    if not selector:
        return [Problem(pod.where, f"requests {pod.gpus} GPUs but has no node selector")]
    pools = [p for p in inv.pools if all((p.get("labels") or {}).get(k) == v for k, v in selector.items())]
    if not pools:
        return [Problem(pod.where, f"node selector {selector} matches no node pool in manifests/prerequisites.yaml")]
    problems = []
    for p in pools:
        if int(p.get("gpus", 0)) < pod.gpus:
            problems.append(Problem(pod.where, f"requests {pod.gpus} GPUs on node pool {p['name']}, whose nodes have "
                                               f"{p.get('gpus', 0)}"))
            continue
        if pod.cpu > float(p.get("cpu", 0)) or pod.memory_gi > float(p.get("memoryGi", 0)):
            problems.append(Problem(pod.where, f"requests {pod.cpu:g} CPU / {pod.memory_gi:g}Gi on node pool {p['name']}, "
                                               f"whose nodes have {p.get('cpu')} / {p.get('memoryGi')}Gi"))
        tolerations = pod.spec.get("tolerations") or []
        for taint in p.get("taints") or []:
            if not any(t.get("key") == taint["key"] and (t.get("operator") == "Exists" or t.get("value") == taint.get("value"))
                       and t.get("effect") in (None, "", taint.get("effect")) for t in tolerations):
                problems.append(Problem(pod.where, f"does not tolerate taint {taint['key']}:{taint.get('effect')} of node "
                                                   f"pool {p['name']}"))
    return problems


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """Pod Security "restricted" rules beyond baseline a pod breaks (the subset spct's pods could break)."""
    out = []
    psc = spec.get("securityContext") or {}
    for c in spec.get("containers", []):
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot"))):
            out.append(f"{c.get('name')}: runAsNonRoot not set")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c.get('name')}: allowPrivilegeEscalation not false")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            out.append(f"{c.get('name')}: capabilities not dropped")
        if ((sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")) not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c.get('name')}: no RuntimeDefault seccomp profile")
    return out


# Pod Security "baseline" lets containers add only these capabilities (the container runtime's defaults).
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def baseline_violations(spec: Mapping[str, Any]) -> list[str]:
    """Pod Security "baseline" rules a pod breaks (the subset spct's pods could break)."""
    out = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        out.append("host namespaces")
    out += [f"hostPath volume {v.get('name')}" for v in spec.get("volumes", []) if "hostPath" in v]
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{c.get('name')}: privileged")
        extra = sorted(set((sc.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES)
        if extra:
            out.append(f"{c.get('name')}: adds capabilities {', '.join(extra)}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"{c.get('name')}: hostPort")
    return out


def check_pod_security(pod: PodView, inv: Inventory) -> list[Problem]:
    """The namespace's enforced Pod Security level (restricted includes every baseline rule)."""
    if inv.pod_security == "restricted":
        found = [*baseline_violations(pod.spec), *restricted_violations(pod.spec)]
    elif inv.pod_security == "baseline":
        found = baseline_violations(pod.spec)
    else:
        return []
    return [Problem(pod.where, f"breaks Pod Security '{inv.pod_security}' enforced on namespace {inv.namespace}: {v}")
            for v in found]


def allowed_hosts(objs: Iterable[Mapping[str, Any]], namespace: str) -> list[str] | None:
    """The MLflow server's ``--allowed-hosts`` list as the pod's shell expands it."""
    for o in objs:
        if o["kind"] != "Deployment":
            continue
        for c in o["spec"]["template"]["spec"]["containers"]:
            text = " ".join([*c.get("command", []), *c.get("args", [])])
            if "mlflow server" not in text:
                continue
            m = re.search(r"--allowed-hosts[ =](\"[^\"]*\"|'[^']*'|\S+)", text)
            if not m:
                return None  # MLflow's defaults: localhost and private IPs only
            raw = shlex.split(m.group(1))[0]
            return [h.strip().replace("$POD_NAMESPACE", namespace).replace("${POD_NAMESPACE}", namespace)
                    for h in raw.split(",") if h.strip()]
    return []


def host_header(uri: str) -> str:
    """What an HTTP client sends as Host for ``uri``: the port only when it is not the scheme's default.

    >>> host_header("http://spct-mlflow:5000"), host_header("https://mlflow.example.com")
    ('spct-mlflow:5000', 'mlflow.example.com')
    """
    u = urlparse(uri)
    default = {"http": 80, "https": 443}.get(u.scheme)
    return f"{u.hostname}:{u.port}" if u.port and u.port != default else str(u.hostname)


def check_tracking_uri(where: str, uri: str, objs: Sequence[Mapping[str, Any]], inv: Inventory,
                       caller_namespace: str) -> list[Problem]:
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header

    u = urlparse(uri)
    if u.scheme not in ("http", "https"):
        return [Problem(where, f"MLflow URI {uri} is not an http(s) server the cluster can reach")]
    host = u.hostname or ""
    labels = host.split(".")
    problems = []
    in_cluster = len(labels) == 1 or host.endswith(".svc") or ".svc." in host or (len(labels) == 2 and labels[1] == inv.namespace)
    if in_cluster:
        service, ns = labels[0], labels[1] if len(labels) > 1 else caller_namespace
        if ns != inv.namespace:
            problems.append(Problem(where, f"MLflow URI {uri} points at namespace {ns}, the overlay's is {inv.namespace}"))
        elif service not in inv.services:
            problems.append(Problem(where, f"MLflow URI {uri} names Service {service}, which the overlay does not render"))
        elif (u.port or 80) not in inv.services[service]:
            problems.append(Problem(where, f"MLflow URI {uri} uses port {u.port or 80}; Service {service} listens on "
                                           f"{', '.join(map(str, sorted(inv.services[service])))}"))
    hosts = allowed_hosts(objs, inv.namespace)
    if hosts is None:
        hosts = get_default_allowed_hosts()
    if hosts and not is_allowed_host_header(hosts, host_header(uri)):
        problems.append(Problem(where, f"MLflow refuses Host {host_header(uri)} (from {uri}): not in the server's "
                                       "--allowed-hosts (MLflow matches host and port verbatim)"))
    return problems


# -- putting it together ----------------------------------------------------------------------------


def _task_pods(pipeline: Mapping[str, Any], platform: Mapping[str, Any], settings: ClusterSettings,
               params: Mapping[str, Any]) -> list[tuple[str, PodView]]:
    """A PodView per compiled task, with the pod settings the KFP backend would apply."""
    defaults = {k: v.get("defaultValue") for k, v in pipeline["root"]["inputDefinitions"]["parameters"].items()}
    values = defaults | dict(params)
    out = []
    for ex_name, ex in pipeline["deploymentSpec"]["executors"].items():
        task = ex_name.removeprefix("exec-")
        k8s = platform.get(ex_name, {})
        res = ex["container"].get("resources") or {}
        spec: dict[str, Any] = {"serviceAccountName": settings.runner_service_account, "containers": [], "volumes": []}
        container: dict[str, Any] = {"name": "main", "image": values.get("image") or ex["container"].get("image"),
                                     "env": [], "volumeMounts": []}
        for s in k8s.get("secretAsEnv", []):
            for kv in s["keyToEnv"]:
                container["env"].append({"name": kv["envVar"], "valueFrom": {"secretKeyRef": {
                    "name": s["secretName"], "key": kv["secretKey"], "optional": s.get("optional", False)}}})
        for i, m in enumerate(k8s.get("pvcMount", [])):
            spec["volumes"].append({"name": f"pvc{i}", "persistentVolumeClaim": {"claimName": m["constant"]}})
            container["volumeMounts"].append({"name": f"pvc{i}", "mountPath": m["mountPath"]})
        if k8s.get("imagePullSecret"):
            spec["imagePullSecrets"] = [{"name": x["secretName"]} for x in k8s["imagePullSecret"]]
        if "nodeSelector" in k8s:
            ns = k8s["nodeSelector"]
            spec["nodeSelector"] = (values.get(ns["nodeSelectorJson"]["componentInputParameter"].removeprefix("pipelinechannel--"))
                                    if "nodeSelectorJson" in ns else ns.get("labels", {}))
        tolerations = []
        for t in k8s.get("tolerations", []):
            if "tolerationJson" in t:
                tolerations += values.get(t["tolerationJson"]["componentInputParameter"].removeprefix("pipelinechannel--")) or []
            else:
                tolerations.append(t)
        spec["tolerations"] = tolerations
        limits = {}
        if "accelerator" in res:
            limits[res["accelerator"].get("resourceType", settings.accelerator)] = res["accelerator"].get("resourceCount", "0")
        requests = {k: v for k, v in (("cpu", res.get("resourceCpuRequest")), ("memory", res.get("resourceMemoryRequest"))) if v}
        limits |= {k: v for k, v in (("cpu", res.get("resourceCpuLimit")), ("memory", res.get("resourceMemoryLimit"))) if v}
        container["resources"] = {"requests": requests, "limits": limits}
        spec["containers"] = [container]
        out.append((task, pod_view(f"pipeline task {task}", spec, settings.accelerator)))
    return out


def _chart_pods(objs: Sequence[Mapping[str, Any]]) -> list[PodView]:
    views = []
    for o in objs:
        if o["kind"] == "InferenceService":
            p = dict(o["spec"]["predictor"])
            if "model" in p:  # a serving-runtime predictor (the vLLM engine): its model is the container
                p["containers"] = [{"name": "kserve-container", "image": f"runtime:{p['model'].get('runtime', '')}",
                                    **{k: v for k, v in p["model"].items() if k not in ("modelFormat", "runtime", "storageUri", "args")}}]
            views.append(pod_view(f"chart InferenceService/{o['metadata']['name']}", p))
    return views


_IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/-]*(:[0-9]+)?[a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$")


def check_images(image: str, tasks: Iterable[PodView], jobs: Iterable[PodView],
                 chart_objs: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """The run's image everywhere spct runs (task pods, job nodes, the predictor, the helm test pod), with a tag."""
    problems = []
    if not _IMAGE.match(image or ""):
        problems.append(Problem("pipeline parameter image", f"{image!r} is not REPOSITORY:TAG (or @sha256:...)"))
    seen: list[tuple[str, str]] = []
    for view in [*tasks, *jobs]:
        seen += [(view.where, c.get("image", "")) for c in view.spec.get("containers", [])]
    for o in chart_objs:
        if o["kind"] == "InferenceService":
            seen += [(f"chart InferenceService/{o['metadata']['name']}", c.get("image", ""))
                     for c in o["spec"]["predictor"].get("containers", [])]
        elif o["kind"] == "Pod":
            seen += [(f"chart Pod/{o['metadata']['name']}", c.get("image", "")) for c in o["spec"]["containers"]]
    for where, img in seen:
        if img != image:
            problems.append(Problem(where, f"runs image {img!r}, not the run's image {image!r}"))
    return problems


# The oldest KFP backend whose driver applies what the compiled pipeline uses: node selector and
# tolerations from run parameters (kfp-kubernetes' nodeSelectorJson / tolerationJson) and retry
# backoff; an older driver rejects the platform spec (the 2.2 driver, as issue 20 reports it; the
# threshold is that report's, not re-derived here from the backend's source).
KFP_BACKEND_MIN = (2, 5)


def check_kfp_backend(version: str, pipeline: Mapping[str, Any], platform: Mapping[str, Any]) -> list[Problem]:
    """The KFP backend named with ``--kfp-version`` must run what the compiled pipeline uses."""
    m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    if not m:
        return [Problem("KFP backend version", f"{version!r} is not a version like 2.5.0")]
    if (int(m.group(1)), int(m.group(2))) >= KFP_BACKEND_MIN:
        return []
    text = json.dumps(platform)
    uses = [f for f, key in (("node selector from a run parameter", "nodeSelectorJson"),
                             ("tolerations from a run parameter", "tolerationJson")) if key in text]
    if "backoffDuration" in json.dumps(pipeline):
        uses.append("retry backoff")
    if not uses:
        return []
    need = ".".join(map(str, KFP_BACKEND_MIN))
    return [Problem(f"KFP backend {version}", f"the compiled pipeline uses {', '.join(uses)}, which needs KFP >= {need}")]


def check_knative(objs: Sequence[Mapping[str, Any]], inv: Inventory) -> list[Problem]:
    """Serverless InferenceServices: every predictor field must pass Knative's field masks under the
    cluster's declared ``config-features`` (:mod:`spct.k8s.knative`), or the revision is refused."""
    from spct.k8s.knative import refusals

    out = []
    for o in objs:
        mode = (o["metadata"].get("annotations") or {}).get("serving.kserve.io/deploymentMode", "Serverless")
        if o["kind"] == "InferenceService" and mode == "Serverless":
            where = f"chart InferenceService/{o['metadata']['name']} spec.predictor"
            out += [Problem(where, f"{r} (a Serverless revision would be refused)")
                    for r in refusals(o["spec"]["predictor"], inv.knative_features)]
    return out


def check_storage_credentials(objs: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """KServe's storage initializer reads object-store keys from the predictor's ServiceAccount only."""
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    problems = []
    for o in objs:
        if o["kind"] != "InferenceService":
            continue
        p = o["spec"]["predictor"]
        uris = [(p.get("model") or {}).get("storageUri", "")]
        uris += [e.get("value", "") for c in p.get("containers", []) for e in c.get("env", []) if e["name"] == "STORAGE_URI"]
        for uri in filter(None, uris):
            if uri.startswith(("s3://", "gs://")) and not (accounts.get(p.get("serviceAccountName", "")) or {}).get("secrets"):
                problems.append(Problem(f"chart InferenceService/{o['metadata']['name']}",
                                        f"storageUri {uri} needs object-store credentials for KServe's storage initializer: "
                                        "set storage.secretName (a Secret listed on the predictor's ServiceAccount)"))
    return problems


def _overlay_pods(objs: Sequence[Mapping[str, Any]]) -> list[PodView]:
    return [pod_view(f"{w['kind']}/{w['metadata']['name']}", spec) for w, _, spec in wiring.pod_templates(objs)]


def _job_pods(settings: ClusterSettings, nodes: int) -> list[PodView]:
    from spct.pipeline.trainjob import render_job

    views = []
    for kind in ("trainjob", "pytorchjob"):
        job = render_job(settings.model_copy(update={"job_kind": kind}), ["grpo"], nodes=max(2, nodes), name=f"spct-check-{kind}")
        if kind == "trainjob":
            res = job["spec"]["trainer"]["resourcesPerNode"]
            for rj in job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
                spec = rj["template"]["spec"]["template"]["spec"]
                spec = {**spec, "containers": [{**spec["containers"][0], "image": job["spec"]["trainer"]["image"],
                                                "resources": res}]}
                views.append(pod_view(f"TrainJob node ({rj['name']})", spec, settings.accelerator))
        else:
            for role, r in job["spec"]["pytorchReplicaSpecs"].items():
                views.append(pod_view(f"PyTorchJob {role}", r["template"]["spec"], settings.accelerator))
    return views


def check(
    overlay: str | Path = "a100",
    *,
    settings: ClusterSettings | None = None,
    params: Mapping[str, Any] | None = None,
    coldstart: bool = False,
    serving_profile: str = "a100",
    serving_values: Mapping[str, Any] | None = None,
    prerequisites: str | Path | Mapping[str, Any] = PREREQUISITES,
    objects: Sequence[Mapping[str, Any]] | None = None,
    kfp_version: str | None = None,
) -> list[Problem]:
    """Every disagreement between pipeline, overlay, chart, job templates and the declared cluster."""
    from spct.config import load_profile
    from spct.serving import deploy as serving

    settings = settings or ClusterSettings()
    params = dict(params or {})
    prereq = prerequisites if isinstance(prerequisites, Mapping) else yaml.safe_load(Path(prerequisites).read_text())
    objs = list(objects) if objects is not None else render_overlay(overlay)
    problems: list[Problem] = []

    pipeline, platform = compile_ir(settings, params, coldstart)
    if kfp_version:
        problems += check_kfp_backend(kfp_version, pipeline, platform)
    values = {k: v.get("defaultValue") for k, v in pipeline["root"]["inputDefinitions"]["parameters"].items()} | params
    namespace = values.get("namespace") or "spct"
    # The deploy step renders the chart with the run's serving_profile/serving_values parameters;
    # the function's arguments stand in only where the run does not set them.
    serving_profile = str(params.get("serving_profile") or serving_profile)
    run_values = {**(values.get("serving_values") or {}), **dict(serving_values or {})}
    serving_values = serving.with_pull_secrets(run_values, settings.image_pull_secrets) or None
    try:
        chart_objs = serving.render(f"models:/{values.get('model_name', 'spct-grm')}/1", namespace,
                                    profile=serving_profile, values=serving_values, image=values.get("image"),
                                    tracking_uri=values.get("tracking_uri"))
    except (ValueError, FileNotFoundError) as e:  # the deploy step would fail the same way: say so, check the rest
        problems.append(Problem(f"serving chart (serving_profile={serving_profile}, serving_values)",
                                " ".join(str(e).split())))
        chart_objs = []
    inv = inventory([*objs, *[o for o in chart_objs if o["kind"] in ("ServiceAccount",)]], prereq)
    if namespace != inv.namespace:
        problems.append(Problem("pipeline parameter namespace", f"{namespace} is not the overlay's namespace {inv.namespace}"))

    # Pipeline tasks: references, the paths each reads, node pools, pod security.
    tasks = dict(_task_pods(pipeline, platform, settings, params))
    try:
        prof = load_profile(str(values.get("profile") or "a100"))
        eval_data = list(prof.eval.data)
    except Exception as e:  # a profile that does not load is itself the problem
        problems.append(Problem("pipeline parameter profile", f"{values.get('profile')!r} does not load: {e}"))
        eval_data = []
    base_model = (str(values.get("base_model") or ""), "base model")
    reads: dict[str, list[tuple[str, str]]] = {
        "curate": [(str(s), "source") for s in values.get("sources") or []],
        "evaluate": [(str(p), "eval.data") for p in eval_data],
    }
    # The first training stage loads the base model: in its own pod, or (nodes > 1, RFT without a
    # cold start) on the job's nodes, which the launcher only names it to.
    if "coldstart" in tasks:
        reads["coldstart"] = [base_model]
    elif settings.nodes == 1:
        reads["rft"] = [base_model]
    workdir = str(values.get("workdir") or "")
    for t in ("rft", "grpo", "metarm", "register", "coldstart"):
        if t in tasks and workdir:
            reads.setdefault(t, []).append((workdir, "workdir (checkpoints)"))
    for task, view in tasks.items():
        problems += check_pod(view, inv)
        for path, what in reads.get(task, []):
            problems += check_path(view.where, path, view.mounts, what)
    if "coldstart" in tasks and int(values.get("coldstart_steps") or 0) <= 0:
        problems.append(Problem("pipeline task coldstart", f"coldstart_steps is 0: the task would hold {settings.gpus} GPUs "
                                                           "for a no-op; compile without --coldstart"))
    problems += check_tracking_uri("pipeline parameter tracking_uri", str(values.get("tracking_uri") or ""), objs, inv, namespace)
    if settings.nodes > 1 and settings.job_kind == "trainjob" and settings.runtime not in inv.runtimes:
        problems.append(Problem("TrainJob", f"ClusterTrainingRuntime {settings.runtime} is not a declared prerequisite"))

    # Multi-node job pods: the same node pool, volumes and identities.
    try:  # the `job` run parameter overrides ClusterSettings fields for the job (spct.pipeline.stages.job_settings)
        job_settings = settings.with_overrides(dict(values.get("job") or {}))
    except ValidationError as e:
        for err in e.errors():
            problems.append(Problem(f"pipeline parameter job field {'.'.join(map(str, err['loc']))}", err["msg"]))
        job_settings = settings
    job_settings = job_settings.model_copy(update={"image": values.get("image") or settings.image})
    job_pods = _job_pods(job_settings, settings.nodes)
    for view in job_pods:
        problems += check_pod(view, inv)
        if settings.nodes > 1 and "coldstart" not in tasks:
            problems += check_path(view.where, *base_model[:1], view.mounts, base_model[1])

    # The serving chart as the deploy step installs it.
    for view in _chart_pods(chart_objs):
        problems += check_pod(view, inv)
    problems += check_storage_credentials(chart_objs)
    problems += check_knative(chart_objs, inv)
    for o in chart_objs:
        runtime = ((o["spec"].get("predictor") or {}).get("model") or {}).get("runtime") if o["kind"] == "InferenceService" else None
        if runtime and runtime not in inv.serving_runtimes:
            problems.append(Problem(f"chart InferenceService/{o['metadata']['name']} spec.predictor.model.runtime",
                                    f"ClusterServingRuntime {runtime} is not a declared prerequisite"))
    for o in chart_objs:
        if o["kind"] == "InferenceService" and "containers" in o["spec"]["predictor"]:
            env = {e["name"]: e.get("value") for e in o["spec"]["predictor"]["containers"][0].get("env", [])}
            problems += check_tracking_uri(f"chart InferenceService/{o['metadata']['name']} MLFLOW_TRACKING_URI",
                                           str(env.get("MLFLOW_TRACKING_URI") or ""), objs, inv, namespace)
        if o["kind"] == "ServiceAccount":
            for s in o.get("secrets") or []:
                if s["name"] not in inv.secrets:
                    problems.append(Problem(f"chart ServiceAccount/{o['metadata']['name']}",
                                            f"storage Secret {s['name']} is neither rendered nor a prerequisite"))

    problems += check_images(values.get("image") or settings.image, tasks.values(), job_pods, chart_objs)

    # The overlay's own pods (MLflow).
    for view in _overlay_pods(objs):
        problems += check_pod(view, inv)
    # The objects' own cross-references: Services, namespaces, shared claims, the runner's rights.
    problems += _lines(wiring.check_services(objs))
    problems += _lines(wiring.check_namespaces(objs, inv.namespace))
    problems += _lines(wiring.check_shared_claims(objs, (settings.checkpoint_pvc, settings.model_cache_pvc,
                                                         settings.data_pvc), settings.nodes))
    needs = wiring.runner_needs(chart_objs, settings.job_kind, settings.nodes)
    problems += _lines(wiring.check_runner_rbac(objs, settings.runner_service_account, inv.namespace, needs))
    overlay_sas = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    for o in chart_objs:
        if o["kind"] == "ServiceAccount" and o["metadata"]["name"] in overlay_sas:
            problems.append(Problem(f"chart ServiceAccount/{o['metadata']['name']} metadata.name",
                                    "is also the overlay's ServiceAccount: helm would refuse to adopt it, or take "
                                    "it over with the predictor's settings"))
    return problems


def _lines(found: Iterable[tuple[str, str]]) -> list[Problem]:
    return [Problem(where, message) for where, message in found]


def check_pod(pod: PodView, inv: Inventory) -> list[Problem]:
    """Every per-pod check, the same for task, job, chart and overlay pods: references, the pod's own
    cross-references (named probe ports, ConfigMap keys, requests within limits), node pool (GPU pods
    only) and the namespace's Pod Security level."""
    found = [*wiring.check_named_ports(pod.spec), *wiring.check_configmap_keys(pod.spec, inv.config_maps),
             *wiring.check_requests_within_limits(pod.spec)]
    return [*check_references(pod, inv), *[Problem(f"{pod.where} {where}", message) for where, message in found],
            *check_pool(pod, inv), *check_pod_security(pod, inv)]
