"""The deploy step: the serving chart installed or upgraded by Helm itself, pinned to one model version.

``deploy`` runs ``helm upgrade --install`` on ``charts/spct-serving`` (the release
:data:`RELEASE`, the same name the docs install by hand), with the serving profile's
values file (``a100`` -> ``values-a100.yaml``), the run's image and
``model.uri=models:/NAME/VERSION``. Pinning the version (not ``@champion``) is what
makes a promotion roll out: the predictor's arguments change, so its pod template
changes and KServe starts new pods; a rollback in the registry followed by a deploy
of the older version rolls back the same way, and replicas never serve two
versions after a restart.

Only versions the gate promoted deploy by default (:func:`check_promoted`): anything else
(refused, never gated, not a registered version at all) needs ``force=True`` with a reason,
which is written as ``spct.deploy.forced_*`` tags on the version before Helm runs. The
pipeline deploys only after its gate promoted, and never forces.

Helm does not know when a KServe ``InferenceService`` is ready, so the step then
polls its status (:func:`readiness`) and, if the new revision never becomes ready,
runs ``helm rollback`` to the previous release revision. Helm keeps its release
records in ConfigMaps (``HELM_DRIVER=configmap``) so the pipeline runner needs no
access to Secrets (manifests/base/rbac.yaml).
"""

from __future__ import annotations

import copy
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GROUP, VERSION, PLURAL, KIND = "serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"
RELEASE = "spct-serving"  # one release name: the pipeline, `spct deploy` and docs' `helm install`
CHART = Path(__file__).resolve().parents[3] / "charts" / "spct-serving"
PROFILES = {"default": (), "a100": ("values-a100.yaml",), "vllm": ("values-a100.yaml", "values-vllm.yaml")}
HELM_DRIVER = "configmap"


class DeployError(RuntimeError):
    """The new InferenceService did not become ready; ``result`` says what was done about it."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


def chart_values(chart: Path = CHART) -> dict[str, Any]:
    """The chart's own ``values.yaml`` (read, never copied into Python)."""
    return yaml.safe_load((chart / "values.yaml").read_text()) or {}


def merge_values(overrides: Mapping[str, Any] | None = None, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Helm's rule for stacking values files: maps merge key by key, everything else (lists too) is replaced.

    ``base`` defaults to the chart's ``values.yaml``.
    """
    out = copy.deepcopy(dict(chart_values() if base is None else base))
    for k, v in (overrides or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = merge_values(v, out[k])
        else:
            out[k] = copy.deepcopy(v)
    return out


def split_image(image: str) -> dict[str, str]:
    """``registry/spct:0.2.0`` -> the chart's ``image.repository`` and ``image.tag``.

    >>> split_image("reg.example.com:5000/team/spct:0.2.0")
    {'repository': 'reg.example.com:5000/team/spct', 'tag': '0.2.0'}
    """
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag or not name:
        raise ValueError(f"image {image!r} has no tag (expected REPOSITORY:TAG)")
    return {"repository": name, "tag": tag}


def release_values(model_uri: str, *, values: Mapping[str, Any] | None = None, image: str | None = None,
                   tracking_uri: str | None = None, canary_percent: int | None = None) -> dict[str, Any]:
    """What the step sets on top of the profile's values file: the user's values, then the pinned model,
    the run's image and tracking URI (these win: they are what this deploy is for)."""
    v = merge_values(values or {}, {})
    v = merge_values({"model": {"uri": model_uri}}, v)
    if image:
        v = merge_values({"image": split_image(image)}, v)
    if tracking_uri:
        v = merge_values({"mlflow": {"trackingUri": tracking_uri}}, v)
    if canary_percent is not None:
        if not 0 <= canary_percent <= 100:
            raise ValueError(f"canary_percent must be in 0..100, got {canary_percent}")
        v = merge_values({"canaryTrafficPercent": canary_percent, "deploymentMode": "Serverless"}, v)
    return v


def pin_version(model_uri: str, tracking_uri: str | None) -> str:
    """``models:/NAME@ALIAS`` -> ``models:/NAME/VERSION`` through the registry; other URIs unchanged.

    An alias in the pod spec never changes when the alias moves, so nothing would roll out;
    the version number does.
    """
    if not (model_uri.startswith("models:/") and "@" in model_uri):
        return model_uri
    name, _, alias = model_uri[len("models:/"):].partition("@")
    if not tracking_uri:
        raise ValueError(f"{model_uri}: an alias is resolved to its version before deploying (so a promotion rolls "
                         "out); give the MLflow tracking URI, or pass models:/NAME/VERSION")
    from mlflow.exceptions import MlflowException

    from spct.registry.tracking import client_for

    try:
        version = client_for(tracking_uri).get_model_version_by_alias(name, alias).version
    except MlflowException as e:
        raise ValueError(f"{model_uri}: cannot resolve the alias at {tracking_uri}: {e.message}") from e
    return f"models:/{name}/{version}"


# -- the gate: only promoted versions deploy unless forced -------------------------------------------

FORCED_PREFIX = "spct.deploy.forced_"


class NotPromoted(ValueError):
    """A deploy of a version the gate did not promote, without ``force``; the message is one line."""


def _registry_version(model_uri: str) -> tuple[str, str] | None:
    """``models:/NAME/VERSION`` -> ``(NAME, VERSION)``; None for anything else (an alias is pinned first)."""
    if not model_uri.startswith("models:/") or "@" in model_uri:
        return None
    name, _, version = model_uri[len("models:/"):].rpartition("/")
    return (name, version) if name and version.isdigit() else None


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry
        user = f"uid {os.getuid()}"
    who = f"{user}@{socket.gethostname()}"
    if os.environ.get("MLFLOW_TRACKING_USERNAME"):  # the identity the MLflow server authenticates
        who += f" (MLflow user {os.environ['MLFLOW_TRACKING_USERNAME']})"
    return who


def check_promoted(model_uri: str, tracking_uri: str | None, *, force: bool = False,
                   reason: str | None = None) -> dict[str, str] | None:
    """May ``model_uri`` be deployed? None when the gate promoted it (its ``spct.gate.decision`` tag).

    Anything else raises :class:`NotPromoted` naming the version and its decision, unless
    ``force`` with a non-empty ``reason``: then the forced-deploy record (tags, written by
    :func:`record_forced`) is returned. Reads the registry only; nothing is written here.
    """
    reason = " ".join((reason or "").split())  # one line: a tag is read back in listings and the MLflow UI
    if force and not reason:
        raise ValueError("--force needs --reason \"...\": why this version is deployed without the gate's promotion "
                         "(it is recorded on the version)")
    if reason and not force:
        raise ValueError("--reason is recorded only with --force (a promoted version needs neither)")
    if len(reason) > 1000:  # MLflow caps a version tag's value; say so here rather than half-way through a deploy
        raise ValueError(f"--reason is {len(reason)} characters; keep it under 1000 (link to a longer write-up)")
    ref = _registry_version(model_uri)
    if ref is None:
        decision = "none: not a registered model version, so the gate never judged it"
    else:
        if not tracking_uri:
            raise ValueError(f"{model_uri}: its gate decision is read from the registry before deploying; give the "
                             "MLflow tracking URI")
        from mlflow.exceptions import MlflowException

        from spct.registry.promotion import DECISION_TAG
        from spct.registry.tracking import client_for

        try:
            mv = client_for(tracking_uri).get_model_version(*ref)
        except MlflowException as e:
            raise ValueError(f"{model_uri}: cannot read it from the registry at {tracking_uri}: {e.message}") from e
        decision = mv.tags.get(DECISION_TAG) or "none (never gated)"
        if decision == "promoted":
            return None
    if not force:
        what = f"{ref[0]} version {ref[1]}" if ref else model_uri
        raise NotPromoted(f"{what} was not promoted by the gate (gate decision: {decision}); deploy a promoted version, "
                          "or pass --force --reason \"...\" to deploy it anyway")
    return {f"{FORCED_PREFIX}reason": reason, f"{FORCED_PREFIX}by": _who(),
            f"{FORCED_PREFIX}at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            f"{FORCED_PREFIX}decision": decision}


def record_forced(model_uri: str, tracking_uri: str | None, record: dict[str, str], namespace: str) -> bool:
    """Write a forced deploy's record as tags on the model version; False when there is no version to tag
    (a URI outside the registry: the record is then only in the deploy's result)."""
    ref = _registry_version(model_uri)
    if ref is None or not tracking_uri:
        return False
    from spct.registry.tracking import client_for

    client = client_for(tracking_uri)
    for k, v in (record | {f"{FORCED_PREFIX}namespace": namespace}).items():
        client.set_model_version_tag(*ref, k, v)
    return True


def _helm() -> str:
    from spct.k8s import tool

    return str(tool("helm"))


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess:
    env = os.environ | {"HELM_DRIVER": HELM_DRIVER}
    return subprocess.run(args, capture_output=True, text=True, timeout=kw.pop("timeout", 900), env=env, **kw)


def helm_args(verb: list[str], release: str, namespace: str, values_file: Path, profile: str | None,
              chart: Path = CHART) -> list[str]:
    files = PROFILES.get(profile or "default")
    if files is None:
        raise ValueError(f"unknown serving profile {profile!r}; known: {', '.join(PROFILES)}")
    args = [_helm(), *verb, release, str(chart), "--namespace", namespace]
    for f in files:
        args += ["-f", str(chart / f)]
    return [*args, "-f", str(values_file)]


def render(model_uri: str, namespace: str, *, release: str = RELEASE, profile: str | None = None,
           chart: Path = CHART, **kw: Any) -> list[dict[str, Any]]:
    """``helm template`` with exactly the values ``deploy`` installs: the objects it would apply."""
    v = release_values(model_uri, **kw)
    with tempfile.TemporaryDirectory() as tmp:
        vf = Path(tmp) / "release-values.yaml"
        vf.write_text(yaml.safe_dump(v))
        r = _run(helm_args(["template"], release, namespace, vf, profile, chart), timeout=120)
    if r.returncode != 0:
        raise ValueError(f"helm template {chart.name}: {r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def build_inference_service(values: Mapping[str, Any] | None = None, *, release: str = RELEASE,
                            namespace: str | None = None, model_uri: str | None = None, **_: Any) -> dict[str, Any]:
    """The InferenceService the chart renders for ``values`` (rendered by Helm, not rebuilt here)."""
    v = dict(values or {})
    uri = model_uri or (v.get("model") or {}).get("uri") or chart_values()["model"]["uri"]
    objs = render(uri, namespace or "default", release=release, values=v)
    obj = next(o for o in objs if o["kind"] == KIND)
    if namespace:
        obj["metadata"]["namespace"] = namespace
    return obj


# -- readiness: a pure function over the objects the API server returns -----------------------------


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
    """Reads of InferenceServices (Helm does the writing)."""

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


def deploy(
    model_uri: str,
    namespace: str,
    *,
    values: Mapping[str, Any] | None = None,
    release: str = RELEASE,
    profile: str | None = None,
    image: str | None = None,
    tracking_uri: str | None = None,
    canary_percent: int | None = None,
    timeout_s: float = 1800.0,
    poll_s: float = 10.0,
    apply: bool = True,
    out_dir: Path | None = None,
    cluster: Cluster | None = None,
    chart: Path = CHART,
    pin: bool | None = None,
    reuse_values: bool = False,
    force: bool = False,
    reason: str | None = None,
    registry_uri: str | None = None,
) -> dict[str, Any]:
    """``helm upgrade --install`` the chart for ``model_uri`` (an alias is pinned to its version first);
    wait for Ready; ``helm rollback`` on failure.

    Applying needs the version to have been promoted by the gate, or ``force`` and a ``reason``
    (:func:`check_promoted`). ``registry_uri`` is where the alias and the gate decision are read
    (default ``tracking_uri``, the URI the predictor is given).
    """
    registry_uri = registry_uri or tracking_uri
    if apply if pin is None else pin:
        model_uri = pin_version(model_uri, registry_uri)
    # Checked before anything is rendered or applied, so a refusal costs nothing; a render only
    # (apply=False) changes nothing on the cluster and is not gated.
    forced = check_promoted(model_uri, registry_uri, force=force, reason=reason) if apply else None
    v = release_values(model_uri, values=values, image=image, tracking_uri=tracking_uri, canary_percent=canary_percent)
    if reuse_values:
        v = {"model": {"uri": model_uri}}
    objs = render(model_uri, namespace, release=release, profile=profile, chart=chart, values=values, image=image,
                  tracking_uri=tracking_uri, canary_percent=canary_percent)
    isvc = next(o for o in objs if o["kind"] == KIND)
    isvc["metadata"]["namespace"] = namespace
    name = isvc["metadata"]["name"]
    result: dict[str, Any] = {"name": name, "namespace": namespace, "release": release, "model_uri": model_uri,
                              "profile": profile or "default", "applied": False}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "inferenceservice.yaml").write_text(yaml.safe_dump(isvc, sort_keys=False))
        (out_dir / "rendered.yaml").write_text(yaml.safe_dump_all(objs, sort_keys=False))
        (out_dir / "release-values.yaml").write_text(yaml.safe_dump(v, sort_keys=False))
        result["manifest"] = str(out_dir / "inferenceservice.yaml")
    if not apply:
        return result

    if forced is not None:
        # Written before Helm runs (the render above succeeded): a deploy that fails or dies half-way
        # still leaves the record of who forced which version past the gate, and why.
        result["forced"] = forced | {"recorded": record_forced(model_uri, registry_uri, forced, namespace)}
    if cluster is None:
        from kubernetes.config import ConfigException

        try:
            cluster = Cluster()
        except ConfigException as e:
            raise DeployError(f"no Kubernetes cluster to deploy to (no in-cluster service account, no kube config): "
                              f"{e}", result) from e
    had_release = _run([_helm(), "status", release, "--namespace", namespace, "-o", "json"], timeout=60).returncode == 0
    with tempfile.TemporaryDirectory() as tmp:
        vf = Path(tmp) / "release-values.yaml"
        vf.write_text(yaml.safe_dump(v))
        # reuse_values (a rollback): keep the live release's values (image, profile, overrides), change the model only.
        verb = ["upgrade", "--reuse-values"] if reuse_values else ["upgrade", "--install"]
        up = _run(helm_args(verb, release, namespace, vf, None if reuse_values else profile, chart) + ["--history-max", "20"])
    if up.returncode != 0:
        raise DeployError(f"helm upgrade --install {release} failed: {up.stderr.strip()}", result)
    result.update(applied=True, created=not had_release)
    waited = wait_ready(lambda: cluster.get(name, namespace) or {}, timeout_s, poll_s)
    result.update(ready=waited.ready, reason=waited.reason, wait_s=round(waited.seconds, 1), observed=waited.observed)
    if waited.ready:
        return result
    if not had_release:
        result["rolled_back"] = False
        raise DeployError(f"{namespace}/{name} did not become ready ({waited.reason}); there was no previous "
                          "release to roll back to, so it is left as is for inspection", result)
    back = _run([_helm(), "rollback", release, "0", "--namespace", namespace, "--wait=false"])  # 0 = the previous revision
    result["rolled_back"] = back.returncode == 0
    again = wait_ready(lambda: cluster.get(name, namespace) or {}, timeout_s, poll_s) if back.returncode == 0 else None
    result.update(rollback_ready=bool(again and again.ready), rollback_reason=again.reason if again else back.stderr.strip())
    raise DeployError(f"{namespace}/{name} did not become ready ({waited.reason}); helm rollback to the previous "
                      f"revision: {'ready' if again and again.ready else 'NOT ready: ' + result['rollback_reason']}",
                      result)


def with_pull_secrets(values: Mapping[str, Any] | None, pull_secrets: Sequence[str]) -> dict[str, Any]:
    """The serving chart's values as the deploy step passes them: the run's ``serving_values`` over the
    cluster's image pull secrets (what ``spct cluster check`` renders too)."""
    base = {"imagePullSecrets": [{"name": n} for n in pull_secrets]} if pull_secrets else {}
    return base | dict(values or {})


__all__ = ["CHART", "Cluster", "DeployError", "NotPromoted", "PROFILES", "RELEASE", "Readiness", "WaitResult",
           "build_inference_service", "chart_values", "check_promoted", "deploy", "merge_values", "pin_version", "readiness",
           "record_forced", "release_values", "render", "split_image", "wait_ready", "with_pull_secrets"]

