"""The Serverless predictor against Knative's field masks (spct.k8s.knative), on the chart as rendered.

Knative's webhook refuses a revision whose pod sets a field outside its masks; KServe then never
reports the InferenceService Ready. The a100 values (Serverless) must render only fields Knative
accepts under the config-features docs/cluster.md enables, and the check must name each field
that a cluster would refuse.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from spct.k8s import knative
from spct.k8s.check import PREREQUISITES, check
from spct.serving import deploy

FEATURES = yaml.safe_load(PREREQUISITES.read_text())["knativeFeatures"]


@pytest.fixture(scope="module")
def a100_predictor():
    objs = deploy.render("models:/spct-grm/1", "spct", profile="a100")
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    return isvc["spec"]["predictor"]


def test_the_mask_tables_hold_what_knative_refuses_and_gates():
    # knative-v1.15.0 .. v1.23.0, pkg/apis/serving/fieldmask.go and pkg/apis/config/features.go
    assert "terminationGracePeriodSeconds" not in knative.POD_ALLOWED | set(knative.POD_FEATURES)
    assert knative.POD_FEATURES["nodeSelector"] == "kubernetes.podspec-nodeselector"
    assert knative.POD_FEATURES["tolerations"] == "kubernetes.podspec-tolerations"
    assert knative.POD_FEATURES["securityContext"] == "kubernetes.podspec-securitycontext"
    assert knative.enabled({}, "kubernetes.podspec-volumes-emptydir") and not knative.enabled({}, "kubernetes.podspec-tolerations")
    assert "startupProbe" in knative.CONTAINER_ALLOWED and "lifecycle" not in knative.CONTAINER_ALLOWED
    assert knative.refusals({"automountServiceAccountToken": False}) == []


def test_the_a100_predictor_renders_only_fields_knative_accepts(a100_predictor):
    assert knative.refusals(a100_predictor, FEATURES) == []
    assert "terminationGracePeriodSeconds" not in a100_predictor  # Knative sets it from `timeout`
    assert a100_predictor["timeout"] >= 45  # serving.gracePeriodSeconds + 15 fits in the pod's grace period


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda p, f: p.__setitem__("terminationGracePeriodSeconds", 45), "terminationGracePeriodSeconds: Knative never"),
        (lambda p, f: f.pop("kubernetes.podspec-nodeselector"), "nodeSelector: needs kubernetes.podspec-nodeselector"),
        (lambda p, f: f.pop("kubernetes.podspec-tolerations"), "tolerations: needs kubernetes.podspec-tolerations"),
        (lambda p, f: f.update({"kubernetes.podspec-securitycontext": "Disabled"}), "securityContext: needs"),
        (lambda p, f: p.__setitem__("automountServiceAccountToken", True), "automountServiceAccountToken: only false"),
        (lambda p, f: p.__setitem__("hostNetwork", True), "hostNetwork: Knative never"),
        (lambda p, f: p.__setitem__("priorityClassName", "gpu-high"), "priorityClassName: needs"),
        (lambda p, f: p["containers"][0].__setitem__("lifecycle", {"preStop": {}}), "containers[0].lifecycle"),
        (lambda p, f: p["containers"][0]["ports"].append({"name": "metrics", "containerPort": 9100}), "containers[0].ports"),
        (lambda p, f: p["containers"][0]["securityContext"].__setitem__("privileged", False), "securityContext.privileged"),
        (lambda p, f: p["containers"][0]["securityContext"]["capabilities"].__setitem__("add", ["SYS_PTRACE"]),
         "capabilities.add: needs"),
        (lambda p, f: p["securityContext"].__setitem__("sysctls", []), "securityContext.sysctls"),
        (lambda p, f: p["volumes"].append({"name": "m", "persistentVolumeClaim": {"claimName": "spct-models"}}),
         "persistentVolumeClaim: needs kubernetes.podspec-persistent-volume-claim"),
        (lambda p, f: p["volumes"].append({"name": "h", "hostPath": {"path": "/models"}}), "hostPath: not a volume source"),
    ],
)
def test_each_field_a_serverless_revision_would_refuse_is_named(a100_predictor, change, named):
    predictor, features = copy.deepcopy(a100_predictor), dict(FEATURES)
    change(predictor, features)
    found = knative.refusals(predictor, features)
    assert any(named in r for r in found), found


def test_the_cluster_check_refuses_serverless_serving_without_the_knative_flags():
    prereq = yaml.safe_load(PREREQUISITES.read_text())
    prereq["knativeFeatures"] = {"kubernetes.podspec-affinity": "enabled"}
    lines = [str(p) for p in check("a100", prerequisites=prereq)]
    isvc = [line for line in lines if "chart InferenceService/" in line and "spec.predictor" in line]
    assert any("nodeSelector: needs kubernetes.podspec-nodeselector" in line for line in isvc), lines
    assert any("tolerations: needs kubernetes.podspec-tolerations" in line for line in isvc), lines
    # RawDeployment pods are plain Deployments: the Knative masks do not apply there.
    raw = check("a100", prerequisites=prereq, serving_values={"deploymentMode": "RawDeployment", "autoscaling": {"metric": "cpu"}})
    assert not [p for p in raw if "Knative" in p.message or "config-features" in p.message]


def test_a_grace_period_longer_than_knatives_is_refused_when_rendering():
    with pytest.raises(Exception, match="gracePeriodSeconds"):
        deploy.render("models:/spct-grm/1", "spct", profile="a100", values={"serving": {"gracePeriodSeconds": 600}})
