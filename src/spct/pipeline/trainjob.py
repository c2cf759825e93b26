"""Multi-node training from inside a pipeline task: a Kubeflow Trainer ``TrainJob``
(or a training-operator ``PyTorchJob``) built from ``manifests/jobs/`` and the one
:class:`~spct.k8s.settings.ClusterSettings`, created (or adopted on a task retry),
watched and turned into a task result or a task failure carrying the job's reason.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml

from spct.k8s.settings import ClusterSettings

JOBS_DIR = Path(__file__).resolve().parents[3] / "manifests" / "jobs"
API = {
    "trainjob": ("trainer.kubeflow.org", "v1alpha1", "trainjobs"),
    "pytorchjob": ("kubeflow.org", "v1", "pytorchjobs"),
}


class JobFailed(RuntimeError):
    """The training job ended in failure; the message carries its reason."""


# Pods of a Kubeflow profile namespace get an Istio sidecar unless told otherwise; a sidecar
# keeps a finished training pod alive and intercepts the torchrun/NCCL rendezvous ports.
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


def _template(settings: ClusterSettings) -> dict[str, Any]:
    path = Path(settings.template) if settings.template else JOBS_DIR / f"{settings.job_kind}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"job template {path} does not exist")
    return copy.deepcopy(yaml.safe_load(path.read_text()))


def _env_list(env: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": str(v)} for k, v in env.items()]


def _pod_settings(template: dict[str, Any], s: ClusterSettings) -> None:
    """Node pool, identity and volumes of one pod template (``{metadata, spec}``)."""
    meta = template.setdefault("metadata", {})
    meta.setdefault("annotations", {}).update(NO_SIDECAR)
    pod = template["spec"]
    pod["nodeSelector"] = dict(s.node_selector)
    pod["tolerations"] = [dict(t) for t in s.tolerations]
    pod["serviceAccountName"] = s.trainer_service_account
    if s.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    claims = {"checkpoints": s.checkpoint_pvc, "model-cache": s.model_cache_pvc, "data": s.data_pvc}
    for vol in pod.get("volumes", []):
        if vol["name"] in claims:
            vol["persistentVolumeClaim"]["claimName"] = claims[vol["name"]]
        elif vol["name"] == "dshm":
            vol["emptyDir"]["sizeLimit"] = s.shm_size


def job_name(run_id: str, stage: str) -> str:
    """One name per pipeline task, the same on every retry of it, so a retry finds the job it started.

    >>> job_name("0f3c2a9e", "grpo") == job_name("0f3c2a9e", "grpo") != job_name("0f3c2a9e", "rft")
    True
    """
    digest = hashlib.sha256(f"{run_id}/{stage}".encode()).hexdigest()[:10]
    return f"spct-{stage}-{digest}"


def render_job(settings: ClusterSettings, args: Sequence[str], *, nodes: int, name: str,
               env: Mapping[str, str] | None = None, owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The job object for ``nodes`` GPU nodes, each running ``torchrun --no-python spct <args>``.

    ``owner`` (an ownerReference, the launching task's pod) makes Kubernetes delete the job
    with the pipeline's pods instead of leaving 8-GPU nodes running after a cancelled run.
    """
    if nodes < 2:
        raise ValueError(f"a multi-node job needs nodes >= 2, got {nodes}")
    job = _template(settings)
    job["metadata"]["name"] = name
    if settings.namespace:
        job["metadata"]["namespace"] = settings.namespace
    if owner:
        job["metadata"]["ownerReferences"] = [dict(owner)]
    gpus = str(settings.gpus)
    resources = {
        "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request, settings.accelerator: gpus},
        "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit, settings.accelerator: gpus},
    }
    if settings.job_kind == "trainjob":
        spec = job["spec"]
        spec["runtimeRef"]["name"] = settings.runtime
        t = spec["trainer"]
        t.update(image=settings.image, numNodes=nodes, numProcPerNode=settings.gpus, args=list(args),
                 resourcesPerNode=resources)
        t["env"] = [e for e in t.get("env", []) if e["name"] not in (env or {})] + _env_list(env or {})
        for patch in spec.get("runtimePatches", []):
            for rj in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
                _pod_settings(rj["template"]["spec"]["template"], settings)
    else:
        spec = job["spec"]
        spec["nprocPerNode"] = gpus
        replicas = spec["pytorchReplicaSpecs"]
        replicas["Worker"]["replicas"] = nodes - 1
        for role in ("Master", "Worker"):
            replicas[role]["template"] = copy.deepcopy(replicas[role]["template"])
            _pod_settings(replicas[role]["template"], settings)
            c = replicas[role]["template"]["spec"]["containers"][0]
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


def on_retry(kind: str, existing: Mapping[str, Any] | None) -> Literal["create", "adopt", "replace"]:
    """What a (re)started task does with the job of the same name: none yet, one to watch, or a failed one.

    >>> on_retry("trainjob", None), on_retry("trainjob", {"status": {}}), on_retry(
    ...     "trainjob", {"status": {"conditions": [{"type": "Failed", "status": "True"}]}})
    ('create', 'adopt', 'replace')
    """
    if existing is None:
        return "create"
    state, _ = job_state(kind, existing.get("status"))
    return "replace" if state == "failed" else "adopt"


def dropped_patches(sent: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """Whether the API server pruned ``spec.runtimePatches`` (Kubeflow Trainer before v2.2 has no such field).

    Without them the job would run without node selector, PVCs and service account, so it is
    deleted and the task fails, naming the fallback.
    """
    return bool(sent.get("spec", {}).get("runtimePatches")) and not stored.get("spec", {}).get("runtimePatches")


def _namespace(settings: ClusterSettings) -> str:
    if settings.namespace:
        return settings.namespace
    sa_ns = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    if sa_ns.is_file():
        return sa_ns.read_text().strip()
    return os.environ.get("POD_NAMESPACE", "default")


def _clients() -> tuple[Any, Any]:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CustomObjectsApi(), client.CoreV1Api()


def own_pod_reference(core: Any, namespace: str) -> dict[str, Any] | None:
    """The ownerReference of this task's pod (HOSTNAME is the pod name), or None outside a pod."""
    name = os.environ.get("HOSTNAME")
    if not name or core is None:
        return None
    try:
        pod = core.read_namespaced_pod(name, namespace)
    except Exception:  # not in a pod (kube config from a workstation): no owner
        return None
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod.metadata.uid,
            "blockOwnerDeletion": False, "controller": False}


def run_training_job(
    settings: ClusterSettings,
    args: Sequence[str],
    *,
    nodes: int,
    name: str,
    env: Mapping[str, str] | None = None,
    api: Any = None,
    core: Any = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Create (or, on a task retry, adopt or replace) the job, report each change of its conditions,
    and return or raise with its reason."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural = API[settings.job_kind]
    ns = _namespace(settings)
    if api is None:
        api, core = _clients()
    owner = own_pod_reference(core, ns)
    job = render_job(settings, args, nodes=nodes, name=name, env=env, owner=owner)
    try:
        existing = api.get_namespaced_custom_object(group, version, ns, plural, name)
    except ApiException as e:
        if e.status != 404:
            raise
        existing = None
    try:
        with _sigterm_raises():
            _start(api, settings, job, existing, owner, ns, name, nodes, say)
            return _wait(api, settings, job, ns, name, nodes, say)
    except (Stopped, JobTimedOut) as e:
        # A cancelled run (KFP sets activeDeadlineSeconds=0 and the kubelet stops this pod with SIGTERM)
        # or the task's own deadline: the job's owner pod is only deleted with the workflow, a day
        # later (TTL), and its GPU nodes would keep training until then. Delete it now.
        say(f"{e}; deleting {job['kind']} {ns}/{name} so its nodes are freed")
        try:
            api.delete_namespaced_custom_object(group, version, ns, plural, name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
        raise


def _start(api: Any, settings: ClusterSettings, job: Mapping[str, Any], existing: Mapping[str, Any] | None,
           owner: Mapping[str, Any] | None, ns: str, name: str, nodes: int, say: Callable[[str], None]) -> None:
    """Create the job, or (a retry) adopt or replace the earlier attempt's."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural = API[settings.job_kind]
    action = on_retry(settings.job_kind, existing)
    if action == "replace":
        say(f"{job['kind']} {ns}/{name} from an earlier attempt failed; deleting it and starting again")
        api.delete_namespaced_custom_object(group, version, ns, plural, name, propagation_policy="Foreground")
        deadline = time.monotonic() + 600
        while True:
            try:
                api.get_namespaced_custom_object(group, version, ns, plural, name)
            except ApiException as e:
                if e.status == 404:
                    break
                raise
            if time.monotonic() > deadline:
                raise JobFailed(f"{job['kind']} {ns}/{name} of an earlier attempt was not deleted within 600 s")
            time.sleep(5)
    if action == "adopt":
        say(f"adopting {job['kind']} {ns}/{name} started by an earlier attempt of this task")
        if owner:  # the earlier attempt's pod may be cleaned up before this one finishes
            refs = (existing.get("metadata") or {}).get("ownerReferences") or []
            api.patch_namespaced_custom_object(group, version, ns, plural, name,
                                               {"metadata": {"ownerReferences": [*refs, owner]}})
    else:
        stored = api.create_namespaced_custom_object(group, version, ns, plural, job)
        if dropped_patches(job, stored):
            api.delete_namespaced_custom_object(group, version, ns, plural, name)
            raise JobFailed(f"{ns}/{name}: the API server dropped spec.runtimePatches, so this Kubeflow Trainer is "
                            "older than v2.2 and the nodes would run without node selector, volumes and service "
                            "account; use the training operator (job_kind=pytorchjob) or see docs/cluster.md, "
                            "'Trainer before v2.2'")
        say(f"created {job['kind']} {ns}/{name}: {nodes} nodes x {settings.gpus} GPUs")


class Stopped(BaseException):
    """This task was told to stop (SIGTERM); a BaseException so no ``except Exception`` swallows it."""


class JobTimedOut(JobFailed):
    """The job ran past ``job_timeout_s``."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` in the main thread for the duration (elsewhere: no change)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise Stopped(f"stopped by signal {signum} (the run was cancelled or the pod is being deleted)")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait(api: Any, settings: ClusterSettings, job: Mapping[str, Any], ns: str, name: str, nodes: int,
          say: Callable[[str], None]) -> dict[str, Any]:
    group, version, plural = API[settings.job_kind]
    deadline = time.monotonic() + settings.job_timeout_s
    seen: str = ""
    while True:
        obj = api.get_namespaced_custom_object(group, version, ns, plural, name)
        status = obj.get("status") or {}
        line = json.dumps([(c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []])
        if line != seen:
            say(f"{name}: {line}")
            seen = line
        state, reason = job_state(settings.job_kind, status)
        if state == "succeeded":
            return {"job": name, "namespace": ns, "nodes": nodes}
        if state == "failed":
            raise JobFailed(f"{job['kind']} {ns}/{name} failed: {reason or 'no reason given'}")
        if time.monotonic() > deadline:
            raise JobTimedOut(f"{job['kind']} {ns}/{name} still running after {settings.job_timeout_s:.0f}s")
        time.sleep(settings.poll_s)
