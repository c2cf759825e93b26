"""Cross-references between rendered objects that only a cluster would otherwise find wrong.

Each check takes rendered objects (or one pod) and returns problems naming the object and the
field: a Service whose selector or targetPort reaches no pod, a probe on a port the container does
not name, a ``configMapKeyRef`` to a missing key, requests above limits, an object landing in
another namespace, a PVC several nodes cannot share, the pipeline runner's Role missing a verb the
runner's own code uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# What the pipeline runner's code does through the API server, per (apiGroup, resource):
# spct.pipeline.trainjob (create, adopt/patch, poll, delete jobs; read its own pod for the owner
# reference) and spct.serving.deploy (helm upgrade --install / rollback of the chart's objects with
# HELM_DRIVER=configmap, then polling the InferenceService).
HELM_VERBS = frozenset({"get", "list", "create", "patch", "update", "delete"})
JOB_VERBS = frozenset({"get", "create", "patch", "delete"})
JOB_RESOURCES = {"trainjob": ("trainer.kubeflow.org", "trainjobs"), "pytorchjob": ("kubeflow.org", "pytorchjobs")}
# The kinds the serving chart renders, as RBAC names them.
KIND_RESOURCES = {
    "InferenceService": ("serving.kserve.io", "inferenceservices"),
    "ServiceAccount": ("", "serviceaccounts"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "ConfigMap": ("", "configmaps"),
    "Service": ("", "services"),
    "Secret": ("", "secrets"),
}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


def _where(o: Mapping[str, Any]) -> str:
    return f"{o['kind']}/{o['metadata']['name']}"


def pod_templates(objs: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], dict[str, str], dict[str, Any]]]:
    """``(workload, pod labels, pod spec)`` for every workload the objects hold."""
    out = []
    for o in objs:
        if o["kind"] in WORKLOADS:
            tpl = o["spec"]["template"]
            out.append((o, dict((tpl.get("metadata") or {}).get("labels") or {}), tpl["spec"]))
    return out


def check_services(objs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each Service selects some workload's pods, and each targetPort is a port those pods expose."""
    out: list[tuple[str, str]] = []
    pods = pod_templates(objs)
    for svc in (o for o in objs if o["kind"] == "Service"):
        selector = svc["spec"].get("selector") or {}
        if not selector:
            continue  # a selector-less Service (manual Endpoints) is not ours to judge
        chosen = [(w, spec) for w, labels, spec in pods if all(labels.get(k) == v for k, v in selector.items())]
        if not chosen:
            out.append((f"Service/{svc['metadata']['name']} spec.selector",
                        f"{selector} matches the pod labels of no workload"))
            continue
        for p in svc["spec"].get("ports") or []:
            target = p.get("targetPort", p.get("port"))
            for w, spec in chosen:
                ports = [cp for c in spec.get("containers", []) for cp in c.get("ports") or []]
                found = any(cp.get("name") == target for cp in ports) if isinstance(target, str) else \
                    any(cp.get("containerPort") == target for cp in ports)
                if not found:
                    out.append((f"Service/{svc['metadata']['name']} spec.ports[{p.get('name', target)}].targetPort",
                                f"{target!r} is not a container port of {_where(w)}"))
    return out


def check_named_ports(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Probes that name a port must name one of their container's ports."""
    out = []
    for c in spec.get("containers", []):
        names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            action = (c.get(probe) or {}).get("httpGet") or (c.get(probe) or {}).get("tcpSocket") or {}
            port = action.get("port")
            if isinstance(port, str) and port not in names:
                out.append((f"container {c.get('name')} {probe}.port",
                            f"{port!r} is not a port this container names ({', '.join(sorted(names)) or 'none'})"))
    return out


def check_configmap_keys(spec: Mapping[str, Any], config_maps: Mapping[str, set[str]]) -> list[tuple[str, str]]:
    out = []
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for e in c.get("env", []):
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if not ref or ref.get("optional"):
                continue
            if ref["name"] not in config_maps:
                out.append((f"container {c.get('name')} env {e['name']}", f"ConfigMap {ref['name']} is not rendered"))
            elif ref["key"] not in config_maps[ref["name"]]:
                out.append((f"container {c.get('name')} env {e['name']}",
                            f"ConfigMap {ref['name']} has no key {ref['key']} (keys: {', '.join(sorted(config_maps[ref['name']]))})"))
    return out


def quantity(q: str | int | float) -> float:
    """A Kubernetes quantity as a number ("500m" -> 0.5, "4Gi" -> 4294967296), by the client's own parser."""
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(q))


def check_requests_within_limits(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The API server refuses a container whose request exceeds its limit ("must be less than or equal")."""
    out = []
    for c in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        for k, req in requests.items():
            if k in limits and quantity(req) > quantity(limits[k]):
                out.append((f"container {c.get('name')} resources.requests.{k}",
                            f"{req} is above the limit {limits[k]}"))
    return out


def check_namespaces(objs: Iterable[Mapping[str, Any]], namespace: str) -> list[tuple[str, str]]:
    """Every namespaced object lands in the overlay's namespace (a PVC in `default` is a PVC no pod mounts)."""
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
                      "PersistentVolume", "ClusterTrainingRuntime", "ClusterServingRuntime"}
    out = []
    for o in objs:
        ns = o["metadata"].get("namespace")
        if o["kind"] not in cluster_scoped and ns != namespace:
            out.append((f"{_where(o)} metadata.namespace", f"{ns or 'unset (the default namespace)'}, not {namespace}"))
    return out


def check_shared_claims(objs: Iterable[Mapping[str, Any]], claims: Iterable[str], nodes: int) -> list[tuple[str, str]]:
    """With ``nodes > 1`` the job's pods on several nodes mount these claims at once: ReadWriteMany."""
    if nodes <= 1:
        return []
    by_name = {o["metadata"]["name"]: o for o in objs if o["kind"] == "PersistentVolumeClaim"}
    out = []
    for name in claims:
        pvc = by_name.get(name)
        if pvc is not None and "ReadWriteMany" not in (pvc["spec"].get("accessModes") or []):
            out.append((f"PersistentVolumeClaim/{name} spec.accessModes",
                        f"{pvc['spec'].get('accessModes')}: {nodes} nodes mount it at once, it needs ReadWriteMany"))
    return out


def rules_for(objs: Iterable[Mapping[str, Any]], service_account: str, namespace: str) -> list[Mapping[str, Any]]:
    """The rules of every Role/ClusterRole bound to ``service_account`` by the objects' (Cluster)RoleBindings."""
    objs = list(objs)
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objs if o["kind"] in ("Role", "ClusterRole")}
    out: list[Mapping[str, Any]] = []
    for b in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == service_account
               and s.get("namespace", namespace) == namespace for s in b.get("subjects") or []):
            role = roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]))
            out += list((role or {}).get("rules") or [])
    return out


def allows(rules: Iterable[Mapping[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any((group in r.get("apiGroups", []) or "*" in r.get("apiGroups", []))
               and (resource in r.get("resources", []) or "*" in r.get("resources", []))
               and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))
               and not r.get("resourceNames")
               for r in rules)


def runner_needs(chart_objs: Iterable[Mapping[str, Any]], job_kind: str, nodes: int) -> dict[tuple[str, str], set[str]]:
    """What the runner's code does: helm's verbs on every kind the chart renders and on its release
    records (ConfigMaps), the job verbs when training spans nodes, and reading its own pod."""
    needs: dict[tuple[str, str], set[str]] = {("", "configmaps"): set(HELM_VERBS)}
    for o in chart_objs:
        if o["kind"] in KIND_RESOURCES:
            needs.setdefault(KIND_RESOURCES[o["kind"]], set()).update(HELM_VERBS)
    if nodes > 1:
        needs[JOB_RESOURCES[job_kind]] = set(JOB_VERBS)
        needs[("", "pods")] = {"get"}
    return needs


def check_runner_rbac(objs: Sequence[Mapping[str, Any]], service_account: str, namespace: str,
                      needs: Mapping[tuple[str, str], set[str]]) -> list[tuple[str, str]]:
    rules = rules_for(objs, service_account, namespace)
    out = []
    for (group, resource), verbs in sorted(needs.items()):
        missing = sorted(v for v in verbs if not allows(rules, group, resource, v))
        if missing:
            out.append((f"Role bound to ServiceAccount/{service_account}",
                        f"does not allow {', '.join(missing)} on {resource}{'.' + group if group else ''}, "
                        "which the pipeline runner uses"))
    return out
