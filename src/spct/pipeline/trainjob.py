"""Multi-node training from inside a pipeline task: a Kubeflow Trainer ``TrainJob``
(or a training-operator ``PyTorchJob``) built from ``manifests/jobs/``, created,
watched and turned into a task result or a task failure carrying the job's reason.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

JOBS_DIR = Path(__file__).resolve().parents[3] / "manifests" / "jobs"
API = {
    "trainjob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
    "pytorchjob": ("kubeflow.org", "v1", "pytorchjobs"),
}


class JobFailed(RuntimeError):
    """The training job ended in failure; the message carries its reason."""


class JobSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["trainjob", "pytorchjob"] = Field("trainjob", description="Kubeflow Trainer v2 or the training operator")
    image: str = "ghcr.io/spct/spct:0.1.0"
    namespace: str | None = Field(None, description="None = the task pod's own namespace")
    gpus_per_node: int = Field(8, ge=1)
    cpu: str = "32"
    memory: str = "480Gi"
    gpu_label_key: str = "nvidia.com/gpu.product"
    gpu_label_value: str = "NVIDIA-A100-SXM4-80GB"
    checkpoint_pvc: str = "spct-checkpoints"
    model_cache_pvc: str = "spct-model-cache"
    runtime: str = Field("torch-distributed", description="ClusterTrainingRuntime a TrainJob refers to")
    timeout_s: float = Field(48 * 3600, gt=0)
    poll_s: float = Field(15.0, gt=0)
    template: str | None = Field(None, description="job YAML (default: manifests/jobs/<kind>.yaml)")


def _template(settings: JobSettings) -> dict[str, Any]:
    path = Path(settings.template) if settings.template else JOBS_DIR / f"{settings.kind}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"job template {path} does not exist")
    return copy.deepcopy(yaml.safe_load(path.read_text()))


def _env_list(env: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": str(v)} for k, v in env.items()]


def _pod_settings(pod: dict[str, Any], s: JobSettings) -> None:
    pod["nodeSelector"] = {s.gpu_label_key: s.gpu_label_value}
    for vol in pod.get("volumes", []):
        if vol["name"] == "checkpoints":
            vol["persistentVolumeClaim"]["claimName"] = s.checkpoint_pvc
        elif vol["name"] == "model-cache":
            vol["persistentVolumeClaim"]["claimName"] = s.model_cache_pvc


def render_job(settings: JobSettings, args: Sequence[str], *, nodes: int, name: str,
               env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The job object for ``nodes`` A100 nodes, each running ``torchrun --no-python spct <args>``."""
    if nodes < 2:
        raise ValueError(f"a multi-node job needs nodes >= 2, got {nodes}")
    job = _template(settings)
    job["metadata"]["name"] = name
    if settings.namespace:
        job["metadata"]["namespace"] = settings.namespace
    resources = {
        "requests": {"cpu": settings.cpu, "memory": settings.memory, "nvidia.com/gpu": str(settings.gpus_per_node)},
        "limits": {"cpu": settings.cpu, "memory": settings.memory, "nvidia.com/gpu": str(settings.gpus_per_node)},
    }
    if settings.kind == "trainjob":
        spec = job["spec"]
        spec["runtimeRef"]["name"] = settings.runtime
        t = spec["trainer"]
        t.update(image=settings.image, numNodes=nodes, numProcPerNode=settings.gpus_per_node, args=list(args),
                 resourcesPerNode=resources)
        t["env"] = [e for e in t.get("env", []) if e["name"] not in (env or {})] + _env_list(env or {})
        for patch in spec.get("runtimePatches", []):
            for rj in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
                _pod_settings(rj["template"]["spec"]["template"]["spec"], settings)
    else:
        spec = job["spec"]
        spec["nprocPerNode"] = str(settings.gpus_per_node)
        replicas = spec["pytorchReplicaSpecs"]
        replicas["Worker"]["replicas"] = nodes - 1
        for role in ("Master", "Worker"):
            replicas[role]["template"] = copy.deepcopy(replicas[role]["template"])
            pod = replicas[role]["template"]["spec"]
            _pod_settings(pod, settings)
            c = pod["containers"][0]
            c.update(image=settings.image, args=list(args), resources=copy.deepcopy(resources))
            c["env"] = [e for e in c.get("env", []) if e["name"] not in (env or {})] + _env_list(env or {})
    return job


def job_state(kind: str, status: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(state, reason)`` from a job's status: state is running, succeeded or failed.

    >>> job_state("trainjob", {"conditions": [{"type": "Complete", "status": "True"}]})
    ('succeeded', '')
    >>> job_state("pytorchjob", {"conditions": [{"type": "Failed", "status": "True", "reason": "OOMKilled", "message": "node 1"}]})
    ('failed', 'OOMKilled: node 1')
    """
    done = {"trainjob": "Complete", "pytorchjob": "Succeeded"}[kind]
    for c in (status or {}).get("conditions") or []:
        if c.get("status") != "True":
            continue
        if c.get("type") == "Failed":
            return "failed", ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
        if c.get("type") == done:
            return "succeeded", ""
    return "running", ""


def _namespace(settings: JobSettings) -> str:
    if settings.namespace:
        return settings.namespace
    sa_ns = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if sa_ns.is_file():
        return sa_ns.read_text().strip()
    return os.environ.get("POD_NAMESPACE", "default")


def _api() -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi()


def run_training_job(
    settings: JobSettings,
    args: Sequence[str],
    *,
    nodes: int,
    env: Mapping[str, str] | None = None,
    name_hint: str = "spct-train",
    api: Any = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Create the job, report each change of its conditions, and return or raise with its reason."""
    name = f"{name_hint}-{uuid.uuid4().hex[:6]}"
    job = render_job(settings, args, nodes=nodes, name=name, env=env)
    group, version, plural = API[settings.kind]
    ns = _namespace(settings)
    api = api or _api()
    api.create_namespaced_custom_object(group, version, ns, plural, job)
    say(f"created {job['kind']} {ns}/{name}: {nodes} nodes x {settings.gpus_per_node} GPUs")
    deadline = time.monotonic() + settings.timeout_s
    seen: str = ""
    while True:
        obj = api.get_namespaced_custom_object(group, version, ns, plural, name)
        status = obj.get("status") or {}
        line = json.dumps([(c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []])
        if line != seen:
            say(f"{name}: {line}")
            seen = line
        state, reason = job_state(settings.kind, status)
        if state == "succeeded":
            return {"job": name, "namespace": ns, "nodes": nodes}
        if state == "failed":
            raise JobFailed(f"{job['kind']} {ns}/{name} failed: {reason or 'no reason given'}")
        if time.monotonic() > deadline:
            raise JobFailed(f"{job['kind']} {ns}/{name} still running after {settings.timeout_s:.0f}s")
        time.sleep(settings.poll_s)
