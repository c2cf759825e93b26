"""What Knative Serving accepts in a revision's pod: the contract of a Serverless InferenceService.

In Serverless mode KServe copies the predictor's pod fields into a Knative Service's revision
template (``RevisionSpec.PodSpec``; ``timeout`` becomes ``timeoutSeconds``), and Knative's webhook
refuses any field outside its field masks ("must not set the field(s)"): the InferenceService then
never becomes Ready. Some fields pass only when a ``config-features`` flag is enabled.

The tables below are transcribed (not copied) from knative/serving ``pkg/apis/serving/fieldmask.go``
(``PodSpecMask``, ``ContainerMask``, ``VolumeSourceMask``, ``PodSecurityContextMask``,
``SecurityContextMask``, ``CapabilitiesMask``) and ``pkg/apis/config/features.go`` (flag names and
defaults) at tag ``knative-v1.15.0``, the release paired with KServe 0.15 (the oldest we claim);
``knative-v1.23.0`` is the same for every field here except that it adds flags for hostIPC,
hostPID and hostNetwork, which spct never sets and which are kept refused. Knative also sets the
pod's ``terminationGracePeriodSeconds`` to the revision's ``timeoutSeconds``
(``pkg/reconciler/revision/resources/deploy.go``), which is why the chart sets only ``timeout`` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KNATIVE_TAGS = ("knative-v1.15.0", "knative-v1.23.0")

# PodSpec fields any revision may set.
POD_ALLOWED = frozenset({"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks"})
# PodSpec fields a config-features flag lets through (all disabled by default).
POD_FEATURES = {
    "affinity": "kubernetes.podspec-affinity",
    "topologySpreadConstraints": "kubernetes.podspec-topologyspreadconstraints",
    "hostAliases": "kubernetes.podspec-hostaliases",
    "nodeSelector": "kubernetes.podspec-nodeselector",
    "runtimeClassName": "kubernetes.podspec-runtimeclassname",
    "tolerations": "kubernetes.podspec-tolerations",
    "securityContext": "kubernetes.podspec-securitycontext",
    "shareProcessNamespace": "kubernetes.podspec-shareprocessnamespace",
    "priorityClassName": "kubernetes.podspec-priorityclassname",
    "schedulerName": "kubernetes.podspec-schedulername",
    "initContainers": "kubernetes.podspec-init-containers",
    "dnsPolicy": "kubernetes.podspec-dnspolicy",
    "dnsConfig": "kubernetes.podspec-dnsconfig",
}
# Container fields Knative keeps (Lifecycle, VolumeDevices, Stdin, TTY and the rest are refused).
CONTAINER_ALLOWED = frozenset({
    "name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy", "livenessProbe", "ports",
    "readinessProbe", "resources", "securityContext", "startupProbe", "terminationMessagePath",
    "terminationMessagePolicy", "volumeMounts",
})
CONTAINER_SECURITY_ALLOWED = frozenset({
    "capabilities", "readOnlyRootFilesystem", "runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
    "seccompProfile",
})
# The pod-level securityContext fields that pass once kubernetes.podspec-securitycontext is enabled.
POD_SECURITY_ALLOWED = frozenset({"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups", "seccompProfile"})
VOLUME_ALLOWED = frozenset({"secret", "configMap", "projected"})
VOLUME_FEATURES = {"emptyDir": "kubernetes.podspec-volumes-emptydir",
                   "persistentVolumeClaim": "kubernetes.podspec-persistent-volume-claim"}
ADD_CAPABILITIES = "kubernetes.containerspec-addcapabilities"
# Knative's defaults for the flags above: only emptyDir volumes are enabled out of the box.
FEATURE_DEFAULTS = {flag: "disabled" for flag in [*POD_FEATURES.values(), *VOLUME_FEATURES.values(), ADD_CAPABILITIES]}
FEATURE_DEFAULTS["kubernetes.podspec-volumes-emptydir"] = "enabled"

# KServe's own fields on a component (ComponentExtensionSpec) and the predictor implementations:
# KServe consumes them; they never reach the pod spec.
KSERVE_COMPONENT_FIELDS = frozenset({
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy", "workerSpec",
    "model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml", "lightgbm",
    "paddle",
})


def enabled(features: Mapping[str, str], flag: str) -> bool:
    """A flag's state as Knative reads it: anything but "disabled" lets the field through."""
    return str(features.get(flag, FEATURE_DEFAULTS.get(flag, "disabled"))).lower() != "disabled"


def refusals(predictor: Mapping[str, Any], features: Mapping[str, str] | None = None) -> list[str]:
    """Each field of a Serverless predictor Knative's webhook would refuse, as ``path: why``.

    ``features`` is the cluster's ``config-features`` data (missing flags take Knative's defaults).
    """
    features = dict(features or {})
    out: list[str] = []
    for key, value in predictor.items():
        if key in KSERVE_COMPONENT_FIELDS or key in POD_ALLOWED:
            continue
        if key == "automountServiceAccountToken":
            if value is not False:  # Knative lets only `false` through
                out.append(f"{key}: only false is accepted by Knative")
        elif key in POD_FEATURES:
            if not enabled(features, POD_FEATURES[key]):
                out.append(f"{key}: needs {POD_FEATURES[key]}: enabled in Knative's config-features")
            elif key == "securityContext":
                out += [f"securityContext.{k}: not in Knative's pod securityContext mask"
                        for k in value or {} if k not in POD_SECURITY_ALLOWED]
        else:
            out.append(f"{key}: Knative never accepts this pod field"
                       + (" (it sets the grace period from `timeout`)" if key == "terminationGracePeriodSeconds" else ""))
    for i, c in enumerate(predictor.get("containers") or []):
        where = f"containers[{i}]"
        out += [f"{where}.{k}: not in Knative's container mask" for k in c if k not in CONTAINER_ALLOWED]
        if len(c.get("ports") or []) > 1:
            out.append(f"{where}.ports: Knative routes to one container port, {len(c['ports'])} are set")
        sc = c.get("securityContext") or {}
        out += [f"{where}.securityContext.{k}: not in Knative's securityContext mask"
                for k in sc if k not in CONTAINER_SECURITY_ALLOWED]
        if (sc.get("capabilities") or {}).get("add") and not enabled(features, ADD_CAPABILITIES):
            out.append(f"{where}.securityContext.capabilities.add: needs {ADD_CAPABILITIES}: enabled")
    for i, v in enumerate(predictor.get("volumes") or []):
        for k in v:
            if k == "name" or k in VOLUME_ALLOWED:
                continue
            if k in VOLUME_FEATURES:
                if not enabled(features, VOLUME_FEATURES[k]):
                    out.append(f"volumes[{i}].{k}: needs {VOLUME_FEATURES[k]}: enabled in Knative's config-features")
            else:
                out.append(f"volumes[{i}].{k}: not a volume source Knative accepts")
    return out
