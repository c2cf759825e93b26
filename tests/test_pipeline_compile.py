"""The compiled IR YAML: DAG shape and the Kubernetes settings of the GPU tasks."""

import pytest
import yaml

from spct.pipeline.run import compile_pipeline, parse_params
from spct.pipeline.trainjob import JobSettings, job_state, render_job

GPU = ["exec-coldstart", "exec-rft", "exec-grpo", "exec-metarm", "exec-evaluate"]
TRAIN = ["coldstart", "rft", "grpo", "metarm"]


@pytest.fixture(scope="module")
def ir(tmp_path_factory):
    out = compile_pipeline(tmp_path_factory.mktemp("ir") / "spct.yaml", {"nodes": 2}, gpu_label_value="NVIDIA-A100-PCIE-40GB")
    pipeline, platform = list(yaml.safe_load_all(out.read_text()))
    return pipeline, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_dag_runs_the_stages_in_order(ir):
    pipeline, _ = ir
    tasks = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    deps = {name: set(t.get("dependentTasks", [])) for name, t in tasks.items()}
    assert {"curate", "rft", "grpo", "metarm", "evaluate", "register", "promote"} <= set(tasks)
    assert "coldstart" in deps["rft"] and "curate" in deps["rft"] and "rft" in deps["grpo"] and "grpo" in deps["metarm"]
    assert {"grpo", "metarm"} <= deps["evaluate"] and "evaluate" in deps["register"] and "register" in deps["promote"]
    # deploy sits under the gate's condition
    cond = [t for t in tasks.values() if t.get("triggerPolicy", {}).get("condition")]
    assert cond and "deploy_model" in cond[0]["triggerPolicy"]["condition"]
    inner = pipeline["components"][cond[0]["componentRef"]["name"]]["dag"]["tasks"]
    nested = next(iter(inner.values()))
    assert "promoted" in nested["triggerPolicy"]["condition"]
    assert pipeline["root"]["dag"]["tasks"]["close-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert pipeline["root"]["inputDefinitions"]["parameters"]["nodes"]["defaultValue"] == 2


def test_gpu_tasks_carry_scheduling_volumes_secrets_and_retries(ir):
    pipeline, platform = ir
    tasks = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    for ex in GPU:
        k8s = platform[ex]
        assert k8s["nodeSelector"]["labels"] == {"nvidia.com/gpu.product": "NVIDIA-A100-PCIE-40GB"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in k8s["tolerations"]
        assert k8s["emptyDirMounts"][0] == {"medium": "Memory", "mountPath": "/dev/shm", "sizeLimit": "64Gi", "volumeName": "dshm"}
        assert {m["constant"]: m["mountPath"] for m in k8s["pvcMount"]} == {"spct-checkpoints": "/workspace", "spct-model-cache": "/models"}
        secrets = {s["secretName"]: {e["envVar"] for e in s["keyToEnv"]} for s in k8s["secretAsEnv"]}
        assert secrets["spct-object-store"] >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert "MLFLOW_TRACKING_PASSWORD" in secrets["spct-mlflow-credentials"]
        res = pipeline["deploymentSpec"]["executors"][ex]["container"]["resources"]
        assert res["accelerator"]["resourceType"] == "nvidia.com/gpu" and res["accelerator"]["resourceCount"] == "8"
        assert res["resourceCpuRequest"] == "32" and res["resourceMemoryLimit"] == "900G"
        image = pipeline["deploymentSpec"]["executors"][ex]["container"]["image"]
        assert "pipelinechannel--image" in image  # the image is a pipeline parameter
    for name in TRAIN + ["evaluate"]:
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 2 and tasks[name]["retryPolicy"]["backoffDuration"] == "300s"
    for name in TRAIN:
        assert tasks[name]["cachingOptions"] == {}  # caching off (enableCache absent = false)
    # CPU-only steps get no accelerator and no GPU node selector.
    assert "nodeSelector" not in platform["exec-curate"]
    assert "accelerator" not in pipeline["deploymentSpec"]["executors"]["exec-curate"]["container"]["resources"]


def test_multinode_jobs_target_the_compiled_node_pool(ir):
    """A pipeline compiled for other GPU nodes sends its TrainJobs/PyTorchJobs there too, not to JobSettings' defaults."""
    pipeline, _ = ir
    tasks = pipeline["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    for name in ("rft", "grpo", "metarm"):
        cluster = tasks[name]["inputs"]["parameters"]["cluster"]["runtimeValue"]["constant"]
        s = JobSettings(**cluster, image="reg/spct:1")
        assert (s.gpu_label_value, s.gpus_per_node, s.checkpoint_pvc) == ("NVIDIA-A100-PCIE-40GB", 8, "spct-checkpoints")
        pod = render_job(s, [name], nodes=2, name=f"spct-{name}")["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]
        spec = pod["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-PCIE-40GB"}


def test_components_run_the_project_code_with_nothing_to_install(ir):
    pipeline, _ = ir
    for ex in pipeline["deploymentSpec"]["executors"].values():
        cmd = " ".join(ex["container"]["command"])
        assert "from spct." in cmd and "pip install --quiet --no-warn-script-location 'kfp" in cmd
        assert "spct==" not in cmd  # spct comes from the image, never from an index


def test_param_parsing_types_values():
    assert parse_params(["nodes=2", "sources=[/data/a, /data/b]", "deploy_model=false", "name=x=y"]) == {
        "nodes": 2, "sources": ["/data/a", "/data/b"], "deploy_model": False, "name": "x=y"}
    with pytest.raises(ValueError, match="key=value"):
        parse_params(["nodes"])


def test_trainjob_and_pytorchjob_rendering():
    s = JobSettings(image="reg/spct:1", gpus_per_node=4, gpu_label_value="NVIDIA-A100-SXM4-40GB", namespace="team")
    job = render_job(s, ["grpo", "--profile", "a100"], nodes=3, name="spct-grpo-x", env={"MLFLOW_TRACKING_URI": "http://m"})
    t = job["spec"]["trainer"]
    assert (t["numNodes"], t["numProcPerNode"], t["image"]) == (3, 4, "reg/spct:1")
    assert t["command"] == ["torchrun", "--no-python", "spct"] and t["args"][0] == "grpo"
    assert {"name": "MLFLOW_TRACKING_URI", "value": "http://m"} in t["env"]
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    pj = render_job(s.model_copy(update={"kind": "pytorchjob"}), ["rft"], nodes=3, name="spct-rft-x")
    assert pj["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 2
    assert pj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["image"] == "reg/spct:1"
    with pytest.raises(ValueError, match="nodes >= 2"):
        render_job(s, ["rft"], nodes=1, name="x")
    assert job_state("trainjob", {}) == ("running", "")
    assert job_state("trainjob", {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}) == (
        "failed", "BackoffLimitExceeded")
