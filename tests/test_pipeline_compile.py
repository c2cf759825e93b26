"""The compiled IR YAML: DAG shape and the Kubernetes settings of every task, from the one ClusterSettings."""

import pytest
import yaml

from spct.k8s.settings import DEFAULT_IMAGE, ClusterSettings
from spct.pipeline.run import compile_pipeline, parse_params
from spct.pipeline.stages import job_settings
from spct.pipeline.trainjob import job_name, job_state, on_retry, render_job

TRAIN = ["rft", "grpo", "metarm"]


def _compile(tmp_path_factory, name, params=None, **kw):
    out = compile_pipeline(tmp_path_factory.mktemp("ir") / f"{name}.yaml", params, **kw)
    pipeline, platform = list(yaml.safe_load_all(out.read_text()))
    return pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    return _compile(tmp_path_factory, "default", gpu_label_value="NVIDIA-A100-PCIE-40GB", gpus=4)


@pytest.fixture(scope="module")
def multinode(tmp_path_factory):
    return _compile(tmp_path_factory, "multinode", nodes=4, coldstart=True)


def _tasks(pipeline):
    return pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]


def _mounts(platform, ex):
    return {m["constant"]: m["mountPath"] for m in platform[ex].get("pvcMount", [])}


def test_dag_runs_the_stages_in_order(ir, multinode):
    pipeline, _ = ir
    tasks = _tasks(pipeline)
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert "coldstart" not in tasks  # compiled without it: no pod at all for a zero-step cold start
    assert "curate" in deps["rft"] and "rft" in deps["grpo"] and "grpo" in deps["metarm"]
    assert {"grpo", "metarm"} <= deps["evaluate"] and "evaluate" in deps["register"] and "register" in deps["promote"]
    cond = [t for t in tasks.values() if t.get("triggerPolicy", {}).get("condition")]
    assert cond and "deploy_model" in cond[0]["triggerPolicy"]["condition"]
    inner = pipeline["components"][cond[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert "promoted" in next(iter(inner.values()))["triggerPolicy"]["condition"]
    assert pipeline["root"]["dag"]["tasks"]["close-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert "coldstart" in set(_tasks(multinode[0])["rft"]["dependentTasks"])


def test_gpu_pods_scale_with_the_gpu_count_and_take_the_node_pool_as_run_parameters(ir):
    pipeline, platform = ir
    params = pipeline["root"]["inputDefinitions"]["parameters"]
    assert params["gpu_node_selector"]["defaultValue"] == {"nvidia.com/gpu.product": "NVIDIA-A100-PCIE-40GB"}
    assert params["gpu_tolerations"]["defaultValue"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert params["image"]["defaultValue"] == DEFAULT_IMAGE and "nodes" not in params
    for ex in ["exec-rft", "exec-grpo", "exec-metarm", "exec-evaluate"]:
        k8s = platform[ex]
        assert k8s["nodeSelector"]["nodeSelectorJson"]["componentInputParameter"] == "pipelinechannel--gpu_node_selector"
        assert k8s["tolerations"][0]["tolerationJson"]["componentInputParameter"] == "pipelinechannel--gpu_tolerations"
        res = pipeline["deploymentSpec"]["executors"][ex]["container"]["resources"]
        # --gpus 4: half of an 8-GPU pod's CPU and memory, not the 8-GPU numbers
        assert res["accelerator"]["resourceCount"] == "4"
        assert (res["resourceCpuRequest"], res["resourceMemoryRequest"], res["resourceMemoryLimit"]) == ("16", "240Gi", "448Gi")
        assert "pipelinechannel--image" in pipeline["deploymentSpec"]["executors"][ex]["container"]["image"]
    for name in TRAIN + ["evaluate"]:
        assert _tasks(pipeline)[name]["retryPolicy"]["maxRetryCount"] == 2
    for name in TRAIN:
        assert _tasks(pipeline)[name]["cachingOptions"] == {}
    assert "nodeSelector" not in platform["exec-curate"]
    assert "accelerator" not in pipeline["deploymentSpec"]["executors"]["exec-curate"]["container"]["resources"]


def test_every_task_mounts_what_it_reads_and_only_mlflow_credentials(ir):
    pipeline, platform = ir
    assert _mounts(platform, "exec-curate") == {"spct-data": "/data"}  # sources=["/data/train"]
    assert _mounts(platform, "exec-evaluate") == {"spct-checkpoints": "/workspace", "spct-model-cache": "/models",
                                                  "spct-data": "/data"}  # eval.data of the a100 profile
    assert _mounts(platform, "exec-register") == {"spct-checkpoints": "/workspace"}  # the GRPO model lies there
    for ex in ["exec-rft", "exec-grpo", "exec-metarm"]:
        assert _mounts(platform, ex) == {"spct-checkpoints": "/workspace", "spct-model-cache": "/models"}
    for ex, k8s in platform.items():
        names = {s["secretName"] for s in k8s.get("secretAsEnv", [])}
        assert names == {"spct-mlflow-credentials"}, ex  # object-store keys only on the MLflow server
        assert all(s["optional"] is False for s in k8s["secretAsEnv"])
    # register returns a version string; no bundle artifact goes through KFP's object store
    outs = pipeline["components"]["comp-register"]["outputDefinitions"]
    assert "artifacts" not in outs and outs["parameters"]["Output"]["parameterType"] == "STRING"


def test_multinode_stages_are_cpu_launchers(multinode):
    pipeline, platform = multinode
    for name in TRAIN:
        res = pipeline["deploymentSpec"]["executors"][f"exec-{name}"]["container"]["resources"]
        assert "accelerator" not in res and res["resourceCpuRequest"] == "1"
        assert "nodeSelector" not in platform[f"exec-{name}"]
        assert _mounts(platform, f"exec-{name}") == {"spct-checkpoints": "/workspace"}
        assert _tasks(pipeline)[name]["inputs"]["parameters"]["nodes"]["runtimeValue"]["constant"] == 4
    ev = pipeline["deploymentSpec"]["executors"]["exec-evaluate"]["container"]["resources"]
    assert ev["accelerator"]["resourceCount"] == "8"


def test_multinode_jobs_use_the_run_node_pool_image_and_overrides(ir):
    pipeline, _ = ir
    cluster = _tasks(pipeline)["grpo"]["inputs"]["parameters"]["cluster"]["runtimeValue"]["constant"]
    merged = job_settings(cluster, "reg/spct:1", {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                          [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}], {"gpus": 2})
    s = ClusterSettings(**merged)
    job = render_job(s, ["grpo"], nodes=2, name=job_name("run-1", "grpo"))
    tmpl = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    pod = tmpl["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"][0]["key"] == "dedicated" and pod["serviceAccountName"] == "spct-trainer"
    assert tmpl["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    t = job["spec"]["trainer"]
    assert t["image"] == "reg/spct:1" and t["numProcPerNode"] == 2
    assert t["resourcesPerNode"]["requests"] == {"cpu": "8", "memory": "120Gi", "nvidia.com/gpu": "2"}
    with pytest.raises(ValueError, match="gpus_per_node"):
        job_settings(cluster, "reg/spct:1", {}, [], {"gpus_per_node": 2})  # the old name is refused, named


def test_components_run_the_project_code_with_nothing_to_install(ir):
    pipeline, _ = ir
    for ex in pipeline["deploymentSpec"]["executors"].values():
        cmd = " ".join(ex["container"]["command"])
        assert "from spct." in cmd and "spct==" not in cmd


def test_param_parsing_types_values():
    assert parse_params(["nodes=2", "sources=[/data/a, /data/b]", "deploy_model=false", "name=x=y"]) == {
        "nodes": 2, "sources": ["/data/a", "/data/b"], "deploy_model": False, "name": "x=y"}
    with pytest.raises(ValueError, match="key=value"):
        parse_params(["nodes"])


def test_job_names_retries_and_owner():
    s = ClusterSettings(image="reg/spct:1", gpus=4, gpu_label_value="NVIDIA-A100-SXM4-40GB", namespace="team")
    owner = {"apiVersion": "v1", "kind": "Pod", "name": "task-pod", "uid": "u-1", "controller": False, "blockOwnerDeletion": False}
    name = job_name("run-1", "grpo")
    assert name == job_name("run-1", "grpo") and len(name) <= 63  # a retry of the task finds its job
    job = render_job(s, ["grpo"], nodes=3, name=name, env={"MLFLOW_TRACKING_URI": "http://m"}, owner=owner)
    assert job["metadata"]["ownerReferences"] == [owner]
    assert {"name": "MLFLOW_TRACKING_URI", "value": "http://m"} in job["spec"]["trainer"]["env"]
    pj = render_job(s.model_copy(update={"job_kind": "pytorchjob"}), ["rft"], nodes=3, name="spct-rft-x")
    assert pj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    assert pj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    with pytest.raises(ValueError, match="nodes >= 2"):
        render_job(s, ["rft"], nodes=1, name="x")
    assert on_retry("trainjob", None) == "create"
    assert on_retry("trainjob", {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == "adopt"
    assert on_retry("pytorchjob", {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "replace"
    assert job_state("trainjob", {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}) == (
        "failed", "BackoffLimitExceeded")


def test_trainer_before_v2_2_is_detected(tmp_path):
    """A TrainJob stored without its runtimePatches (pruned by an older CRD) fails the task instead of
    running without node selector, volumes and service account."""
    from spct.pipeline.trainjob import JobFailed, dropped_patches, run_training_job

    class OldTrainer:
        def __init__(self):
            self.deleted = []

        def get_namespaced_custom_object(self, *a):
            from kubernetes.client.exceptions import ApiException
            raise ApiException(status=404)

        def create_namespaced_custom_object(self, group, version, ns, plural, body):
            stored = {k: v for k, v in body.items()}
            stored["spec"] = {k: v for k, v in body["spec"].items() if k != "runtimePatches"}
            return stored

        def delete_namespaced_custom_object(self, group, version, ns, plural, name, **kw):
            self.deleted.append(name)

    s = ClusterSettings(namespace="spct")
    job = render_job(s, ["grpo"], nodes=2, name="j")
    assert dropped_patches(job, job) is False
    api = OldTrainer()
    with pytest.raises(JobFailed, match="older than v2.2"):
        run_training_job(s, ["grpo"], nodes=2, name="spct-grpo-x", api=api, core=None, say=lambda _: None)
    assert api.deleted == ["spct-grpo-x"]


class _RunningTrainer:
    """The Trainer API as a launcher sees it while the job runs (no cluster here: the calls it makes are
    recorded, the job never finishes)."""

    def __init__(self):
        self.created, self.deleted = [], []

    def get_namespaced_custom_object(self, group, version, ns, plural, name):
        from kubernetes.client.exceptions import ApiException

        if not self.created or name in self.deleted:
            raise ApiException(status=404)
        return {"status": {"conditions": [{"type": "Created", "status": "True"}]}}

    def create_namespaced_custom_object(self, group, version, ns, plural, body):
        self.created.append(body["metadata"]["name"])
        return body

    def delete_namespaced_custom_object(self, group, version, ns, plural, name, **kw):
        self.deleted.append((name, kw.get("propagation_policy")))


def test_a_cancelled_or_timed_out_launcher_deletes_its_job():
    """Cancelling a run stops the launcher pod with SIGTERM; the job (owned by that pod, which lives on
    until the workflow is garbage-collected) must be deleted then, not a day later. Same on a timeout."""
    import os
    import signal

    from spct.pipeline.trainjob import JobFailed, JobTimedOut, Stopped, run_training_job

    api = _RunningTrainer()

    def say(line):
        if line.startswith("created"):
            os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends when the run is cancelled

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped):
        run_training_job(ClusterSettings(namespace="spct", poll_s=0.05), ["grpo"], nodes=2, name="spct-grpo-c",
                         api=api, core=None, say=say)
    assert api.deleted == [("spct-grpo-c", "Background")]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is the launcher's only while it waits

    api = _RunningTrainer()
    with pytest.raises(JobTimedOut, match="still running after"):
        run_training_job(ClusterSettings(namespace="spct", poll_s=0.01, job_timeout_s=0.05), ["grpo"], nodes=2,
                         name="spct-grpo-t", api=api, core=None, say=lambda _: None)
    assert api.deleted == [("spct-grpo-t", "Background")] and issubclass(JobTimedOut, JobFailed)
