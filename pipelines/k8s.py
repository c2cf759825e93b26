"""Kubernetes settings of pipeline task pods, all from the one ``spct.k8s.settings.ClusterSettings``.

Which pod mounts what is decided here and nowhere else; ``spct cluster check`` reads the
compiled result and checks each task's paths against its mounts.
"""

from __future__ import annotations

from kfp import dsl, kubernetes

from spct.k8s.settings import DATA, MODELS, WORKDIR, ClusterSettings

__all__ = ["ClusterSettings", "DATA", "MODELS", "WORKDIR", "cpu_task", "gpu_task", "launcher_task"]


def with_mlflow(task: dsl.PipelineTask, s: ClusterSettings) -> dsl.PipelineTask:
    """MLflow credentials as environment. Object-store keys stay with the MLflow server: clients
    upload and download artifacts through its mlflow-artifacts proxy."""
    kubernetes.use_secret_as_env(
        task, s.mlflow_secret,
        {"MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD"},
    )
    return task


def _pull_secrets(task: dsl.PipelineTask, s: ClusterSettings) -> None:
    if s.image_pull_secrets:  # a private registry: every pod of the run pulls the run's image
        kubernetes.set_image_pull_secrets(task, list(s.image_pull_secrets))


def _volumes(task: dsl.PipelineTask, s: ClusterSettings, *, checkpoints: bool, models: bool, data: bool) -> None:
    if checkpoints:
        kubernetes.mount_pvc(task, s.checkpoint_pvc, mount_path=WORKDIR)
    if models:
        kubernetes.mount_pvc(task, s.model_cache_pvc, mount_path=MODELS)
    if data:
        kubernetes.mount_pvc(task, s.data_pvc, mount_path=DATA)


def cpu_task(task: dsl.PipelineTask, s: ClusterSettings, cpu: str = "2", memory: str = "8Gi", *,
             checkpoints: bool = False, data: bool = False) -> dsl.PipelineTask:
    task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(memory).set_memory_limit(memory)
    _volumes(task, s, checkpoints=checkpoints, models=False, data=data)
    _pull_secrets(task, s)
    return with_mlflow(task, s)


def launcher_task(task: dsl.PipelineTask, s: ClusterSettings) -> dsl.PipelineTask:
    """A training stage with ``nodes > 1``: a small CPU pod that starts the multi-node job and waits.

    It needs the checkpoint volume (the job writes there; the launcher reads metrics and the model
    pointer back) and the runner's API rights, but no GPU: the GPUs are the job's.
    """
    cpu_task(task, s, cpu="1", memory="2Gi", checkpoints=True)
    kubernetes.set_timeout(task, s.timeout_s)
    task.set_retry(s.retries, backoff_duration=s.backoff, backoff_factor=2.0, backoff_max_duration="3600s")
    task.set_caching_options(False)
    return task


def gpu_task(task: dsl.PipelineTask, s: ClusterSettings, *, train: bool, node_selector: object = None,
             tolerations: object = None, data: bool = False) -> dsl.PipelineTask:
    """A GPU pod: node pool + tolerations (run parameters when given), GPUs, CPU/memory scaled with
    them, memory-backed /dev/shm, checkpoint and model volumes, MLflow credentials, retries."""
    task.set_accelerator_type(s.accelerator).set_accelerator_limit(s.gpus)
    task.set_cpu_request(s.cpu_request).set_cpu_limit(s.cpu_limit)
    task.set_memory_request(s.memory_request).set_memory_limit(s.memory_limit)
    kubernetes.add_node_selector_json(task, node_selector if node_selector is not None else s.node_selector)
    kubernetes.add_toleration_json(task, tolerations if tolerations is not None else [dict(t) for t in s.tolerations])
    # NCCL and DataLoader workers share tensors through /dev/shm; the default 64 MB is far too small.
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=s.shm_size)
    _volumes(task, s, checkpoints=True, models=True, data=data)
    _pull_secrets(task, s)
    kubernetes.set_timeout(task, s.timeout_s)
    task.set_retry(s.retries, backoff_duration=s.backoff, backoff_factor=2.0, backoff_max_duration="3600s")
    task.set_env_variable("HF_HUB_OFFLINE", "1")
    if train:
        # A rerun must train again: its inputs (profile overrides, base model on the PVC) can change unseen.
        task.set_caching_options(False)
    return with_mlflow(task, s)
