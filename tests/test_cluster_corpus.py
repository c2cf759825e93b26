"""A corpus of deliberate mis-wirings that ``spct cluster check`` must refuse, each named.

Every entry changes one thing a platform engineer could get wrong (an overlay object, a run
parameter, a compile-time setting, the serving values, the declared cluster) starting from the
shipped a100 configuration, which passes. The check must then print a line that names the object
(or parameter) and the field. Everything is rendered for real (kubectl kustomize, the kfp compiler,
helm template); only the API server is missing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from spct.k8s.check import PREREQUISITES, check, render_overlay
from spct.k8s.settings import ClusterSettings


@dataclass
class Miswiring:
    id: str
    expect: tuple[str, ...]  # fragments of one problem line (the object/field and what is wrong)
    objects: Callable[[list[dict]], None] | None = None  # edits the rendered overlay in place
    params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    serving_values: dict[str, Any] | None = None
    prereq: Callable[[dict], None] | None = None
    kfp_version: str | None = None


def _one(objs: list[dict], kind: str, name: str | None = None) -> dict:
    return next(o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


def _rule(objs: list[dict], resource: str) -> dict:
    return next(r for r in _one(objs, "Role", "spct-pipeline-runner")["rules"] if resource in r["resources"])


def _mlflow(objs: list[dict]) -> dict:
    return _one(objs, "Deployment", "spct-mlflow")["spec"]["template"]["spec"]["containers"][0]


def _drop_verb(resource: str, verb: str) -> Callable[[list[dict]], None]:
    return lambda objs: _rule(objs, resource)["verbs"].remove(verb)


def _rename_port(objs: list[dict]) -> None:
    _mlflow(objs)["ports"][0]["name"] = "web"  # probes and the Service still say "http"


def _configmap_key(objs: list[dict]) -> None:
    cm = _one(objs, "ConfigMap")["metadata"]["name"]
    _mlflow(objs)["env"].append({"name": "WORKERS", "valueFrom": {"configMapKeyRef": {"name": cm, "key": "workers"}}})


def _hostpath(objs: list[dict]) -> None:
    spec = _one(objs, "Deployment", "spct-mlflow")["spec"]["template"]["spec"]
    spec["volumes"] = [*spec.get("volumes", []), {"name": "host", "hostPath": {"path": "/var/lib/mlflow"}}]


def _pvc_namespace(objs: list[dict]) -> None:
    pvc = copy.deepcopy(_one(objs, "PersistentVolumeClaim", "spct-data"))
    pvc["metadata"]["name"] = "spct-extra"
    del pvc["metadata"]["namespace"]
    objs.append(pvc)


def _rwo(objs: list[dict]) -> None:
    _one(objs, "PersistentVolumeClaim", "spct-checkpoints")["spec"]["accessModes"] = ["ReadWriteOnce"]


def _mlflow_requests(objs: list[dict]) -> None:
    _mlflow(objs)["resources"]["requests"]["memory"] = "8Gi"  # limit 4Gi


def _binding_subject(objs: list[dict]) -> None:
    _one(objs, "RoleBinding", "spct-pipeline-runner")["subjects"][0]["name"] = "default"


def _no_pvc(objs: list[dict]) -> None:
    objs.remove(_one(objs, "PersistentVolumeClaim", "spct-model-cache"))


def _privileged(objs: list[dict]) -> None:
    _mlflow(objs)["securityContext"]["privileged"] = True


def _no_configmap(objs: list[dict]) -> None:
    objs.remove(_one(objs, "ConfigMap"))


CORPUS = [
    # RBAC: the runner's Role against what its code does
    Miswiring("role-isvc-delete", ("spct-pipeline-runner", "delete on inferenceservices"), objects=_drop_verb("inferenceservices", "delete")),
    Miswiring("role-isvc-patch", ("patch on inferenceservices",), objects=_drop_verb("inferenceservices", "patch")),
    Miswiring("role-trainjob-create", ("create on trainjobs.trainer.kubeflow.org",), objects=_drop_verb("trainjobs", "create"),
              settings={"nodes": 2}),
    Miswiring("role-pytorchjob-delete", ("delete on pytorchjobs.kubeflow.org",), objects=_drop_verb("pytorchjobs", "delete"),
              settings={"nodes": 2, "job_kind": "pytorchjob"}),
    Miswiring("role-helm-records", ("update on configmaps",), objects=_drop_verb("configmaps", "update")),
    Miswiring("role-networkpolicies", ("create on networkpolicies.networking.k8s.io",),
              objects=_drop_verb("networkpolicies", "create")),
    Miswiring("rolebinding-subject", ("ServiceAccount/spct-pipeline-runner", "does not allow"), objects=_binding_subject),
    # Services, ports, keys
    Miswiring("service-selector", ("Service/spct-mlflow spec.selector", "matches the pod labels of no workload"),
              objects=lambda o: _one(o, "Service", "spct-mlflow")["spec"]["selector"].update({"app.kubernetes.io/name": "mlflow"})),
    Miswiring("service-targetport", ("Service/spct-mlflow spec.ports[http].targetPort", "'api'"),
              objects=lambda o: _one(o, "Service", "spct-mlflow")["spec"]["ports"][0].update({"targetPort": "api"})),
    Miswiring("port-renamed", ("Deployment/spct-mlflow container mlflow readinessProbe.port", "'http'"), objects=_rename_port),
    Miswiring("configmap-key", ("Deployment/spct-mlflow container mlflow env WORKERS", "has no key workers"),
              objects=_configmap_key),
    Miswiring("configmap-missing", ("Deployment/spct-mlflow", "ConfigMap spct-mlflow-config"), objects=_no_configmap),
    # Pod Security at the namespace's level (baseline)
    Miswiring("hostpath-baseline", ("Deployment/spct-mlflow", "Pod Security 'baseline'", "hostPath volume host"), objects=_hostpath),
    Miswiring("privileged-baseline", ("Deployment/spct-mlflow", "'baseline'", "privileged"), objects=_privileged),
    # Namespaces and volumes
    Miswiring("pvc-namespace", ("PersistentVolumeClaim/spct-extra metadata.namespace", "not spct"), objects=_pvc_namespace),
    Miswiring("rwo-multinode", ("PersistentVolumeClaim/spct-checkpoints spec.accessModes", "ReadWriteMany"), objects=_rwo,
              settings={"nodes": 2}),
    Miswiring("pvc-missing", ("PersistentVolumeClaim spct-model-cache is not declared",), objects=_no_pvc),
    # Sizes
    Miswiring("mlflow-requests-above-limits", ("Deployment/spct-mlflow container mlflow resources.requests.memory", "8Gi"),
              objects=_mlflow_requests),
    Miswiring("task-requests-above-limits", ("pipeline task", "resources.requests.memory", "above the limit"),
              settings={"memory_per_gpu_gi": 120}),
    Miswiring("chart-requests-above-limits", ("chart InferenceService", "resources.requests.memory"),
              serving_values={"resources": {"requests": {"memory": "200Gi"}, "limits": {"memory": "128Gi"}}}),
    Miswiring("job-gpus-param", ("TrainJob node", "requests 16 GPUs on node pool a100, whose nodes have 8"),
              params={"job": {"gpus": 16}}, settings={"nodes": 2}),
    Miswiring("job-param-typo", ("pipeline parameter job field gpu", "Extra inputs are not permitted"),
              params={"job": {"gpu": 4}}, settings={"nodes": 2}),
    Miswiring("gpus-per-pod", ("requests 16 GPUs on node pool a100",), settings={"gpus": 16}),
    # Run parameters the deploy step and tasks read
    Miswiring("serving-profile-param", ("serving chart (serving_profile=vllm", "engine.storageUri"),
              params={"serving_profile": "vllm"}),
    Miswiring("serving-values-param", ("serving chart", "gracePeriodSeconds"),
              params={"serving_values": {"serving": {"gracePeriodSeconds": 600}}}),
    Miswiring("namespace-param", ("pipeline parameter namespace", "not the overlay's namespace"), params={"namespace": "kubeflow"}),
    Miswiring("profile-param", ("pipeline parameter profile", "does not load"), params={"profile": "a1000"}),
    Miswiring("node-selector-param", ("matches no node pool",), params={"gpu_node_selector": {"nvidia.com/gpu.product": "H100"}}),
    Miswiring("source-unmounted", ("pipeline task curate", "lies on no volume"), params={"sources": ["/scratch/prefs.jsonl"]}),
    Miswiring("tracking-uri-port", ("pipeline parameter tracking_uri", "5001"),
              params={"tracking_uri": "http://spct-mlflow.spct.svc.cluster.local:5001"}),
    # The serving chart against Knative and the cluster
    Miswiring("knative-flags", ("spec.predictor", "nodeSelector: needs kubernetes.podspec-nodeselector"),
              prereq=lambda p: p["knativeFeatures"].pop("kubernetes.podspec-nodeselector")),
    Miswiring("chart-sa-clash", ("chart ServiceAccount/spct-pipeline-runner metadata.name", "also the overlay's"),
              serving_values={"serviceAccount": {"name": "spct-pipeline-runner"}}),
    Miswiring("storage-without-credentials", ("storageUri",),
              serving_values={"model": {"storageUri": "s3://bucket/models/grm"}}),
    Miswiring("missing-secret", ("Secret spct-mlflow-credentials",),
              prereq=lambda p: p["secrets"].pop("spct-mlflow-credentials")),
    Miswiring("pull-secret-undeclared", ("chart InferenceService/spct-serving", "imagePullSecrets: Secret regcred"),
              settings={"image_pull_secrets": ("regcred",)}),
    Miswiring("serving-runtime", ("spec.predictor.model.runtime", "ClusterServingRuntime kserve-huggingfaceserver"),
              params={"serving_profile": "vllm", "serving_values": {"engine": {"storageUri": "pvc://spct-model-cache/grm"}}},
              prereq=lambda p: p.update({"clusterServingRuntimes": []})),
    Miswiring("kfp-backend-2.2", ("KFP backend 2.2.0", "node selector from a run parameter", "KFP >= 2.5"),
              kfp_version="2.2.0"),
    Miswiring("trainer-runtime", ("ClusterTrainingRuntime torch-distributed",),
              prereq=lambda p: p.update({"clusterTrainingRuntimes": []}), settings={"nodes": 2}),
]


@pytest.fixture(scope="module")
def shipped():
    return render_overlay("a100"), yaml.safe_load(PREREQUISITES.read_text())


def test_the_corpus_is_large_and_the_shipped_configuration_passes(shipped):
    objs, prereq = shipped
    assert len(CORPUS) >= 30 and len({m.id for m in CORPUS}) == len(CORPUS)
    assert check(objects=copy.deepcopy(objs), prerequisites=copy.deepcopy(prereq), kfp_version="2.5.0") == []


@pytest.mark.parametrize("case", CORPUS, ids=[m.id for m in CORPUS])
def test_each_miswiring_is_refused_naming_object_and_field(shipped, case: Miswiring):
    objs, prereq = copy.deepcopy(shipped[0]), copy.deepcopy(shipped[1])
    if case.objects:
        case.objects(objs)
    if case.prereq:
        case.prereq(prereq)
    problems = [str(p) for p in check(objects=objs, prerequisites=prereq, params=case.params,
                                      settings=ClusterSettings(**case.settings), serving_values=case.serving_values,
                                      kfp_version=case.kfp_version)]
    assert any(all(f in line for f in case.expect) for line in problems), "\n".join(problems) or "nothing refused"
