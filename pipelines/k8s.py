"""Kubernetes settings for pipeline tasks: A100 scheduling, volumes, secrets, retries.

Names here must match what ``manifests/`` creates (PVCs, ServiceAccount) and what
docs/pipeline.md tells the operator to create (Secrets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfp import dsl, kubernetes


@dataclass(frozen=True)
class ClusterSettings:
    gpu_label_key: str = "nvidia.com/gpu.product"
    gpu_label_value: str = "NVIDIA-A100-SXM4-80GB"
    accelerator: str = "nvidia.com/gpu"
    gpus: int = 8
    cpu_request: str = "32"
    cpu_limit: str = "64"
    memory_request: str = "480G"
    memory_limit: str = "900G"
    shm_size: str = "64Gi"
    checkpoint_pvc: str = "spct-checkpoints"
    model_cache_pvc: str = "spct-model-cache"
    mlflow_secret: str = "spct-mlflow-credentials"
    object_store_secret: str = "spct-object-store"
    retries: int = 2
    backoff: str = "300s"
    timeout_s: int = 48 * 3600
    extra_labels: dict[str, str] = field(default_factory=dict)

    def job_defaults(self) -> dict[str, str | int]:
        """The same node pool for a multi-node TrainJob/PyTorchJob (``JobSettings`` fields).

        Without it a pipeline compiled for other nodes (``--gpu-product``, ``--gpus``) still
        sent its multi-node jobs to JobSettings' own defaults, nodes it may not have.
        """
        return {
            "gpu_label_key": self.gpu_label_key, "gpu_label_value": self.gpu_label_value, "gpus_per_node": self.gpus,
            "cpu": self.cpu_request, "memory": self.memory_request,
            "checkpoint_pvc": self.checkpoint_pvc, "model_cache_pvc": self.model_cache_pvc,
        }  # fmt: skip


WORKDIR = "/workspace"
MODELS = "/models"


def with_secrets(task: dsl.PipelineTask, s: ClusterSettings) -> dsl.PipelineTask:
    """MLflow and object-store credentials as environment (never baked into the image)."""
    kubernetes.use_secret_as_env(
        task, s.mlflow_secret,
        {"MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD"},
        optional=True,  # a tracking server without authentication needs no credentials
    )
    kubernetes.use_secret_as_env(
        task, s.object_store_secret,
        {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
         "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL"},
    )
    return task


def cpu_task(task: dsl.PipelineTask, s: ClusterSettings, cpu: str = "2", memory: str = "8G") -> dsl.PipelineTask:
    task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(memory).set_memory_limit(memory)
    return with_secrets(task, s)


def gpu_task(task: dsl.PipelineTask, s: ClusterSettings, *, train: bool) -> dsl.PipelineTask:
    """An A100 pod: selector + toleration, GPUs, CPU/memory, memory-backed /dev/shm, the PVCs, secrets, retries."""
    task.set_accelerator_type(s.accelerator).set_accelerator_limit(s.gpus)
    task.set_cpu_request(s.cpu_request).set_cpu_limit(s.cpu_limit)
    task.set_memory_request(s.memory_request).set_memory_limit(s.memory_limit)
    kubernetes.add_node_selector(task, s.gpu_label_key, s.gpu_label_value)
    kubernetes.add_toleration(task, key=s.accelerator, operator="Exists", effect="NoSchedule")
    # NCCL and DataLoader workers share tensors through /dev/shm; the default 64 MB is far too small.
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=s.shm_size)
    kubernetes.mount_pvc(task, s.checkpoint_pvc, mount_path=WORKDIR)
    kubernetes.mount_pvc(task, s.model_cache_pvc, mount_path=MODELS)
    kubernetes.set_timeout(task, s.timeout_s)
    task.set_retry(s.retries, backoff_duration=s.backoff, backoff_factor=2.0, backoff_max_duration="3600s")
    task.set_env_variable("HF_HUB_OFFLINE", "1")
    if train:
        # A rerun must train again: its inputs (profile overrides, base model on the PVC) can change unseen.
        task.set_caching_options(False)
    return with_secrets(task, s)
