"""One settings model for everything spct runs on a cluster: pipeline task pods and multi-node jobs.

The pipeline (``pipelines/k8s.py``) compiles its task pods from it, the training task
builds its TrainJob/PyTorchJob from the same object (passed into the component as a
dict), and ``spct cluster check`` renders both from it. Names here must match what
``manifests/`` creates (PVCs, ServiceAccounts) and what docs/cluster.md tells the
operator to create (Secrets).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The one place the project image is named; the chart's image.repository and appVersion
# spell the same (tests/test_chart_render.py keeps them in step), the pipeline's ``image``
# run parameter overrides it per run.
IMAGE_REPOSITORY = "ghcr.io/spct/spct"
IMAGE_TAG = "0.1.0"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"

WORKDIR = "/workspace"  # the checkpoint PVC in every pod that reads or writes checkpoints
MODELS = "/models"  # base models, read-only
DATA = "/data"  # curation and evaluation inputs, read-only

_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|m)?$")


def gpu_toleration(accelerator: str = "nvidia.com/gpu") -> dict[str, str]:
    return {"key": accelerator, "operator": "Exists", "effect": "NoSchedule"}


class ClusterSettings(BaseModel):
    """Node pool, GPUs, CPU/memory (scaled with the GPU count), volumes, identities, retries, jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = DEFAULT_IMAGE
    namespace: str | None = Field(None, description="None = the task pod's own namespace")
    # Node pool. The selector and tolerations are also run parameters of the pipeline
    # (gpu_node_selector, gpu_tolerations) so a run can move to another pool without a recompile.
    gpu_label_key: str = "nvidia.com/gpu.product"
    gpu_label_value: str = "NVIDIA-A100-SXM4-80GB"
    accelerator: str = "nvidia.com/gpu"
    tolerations: tuple[dict[str, str], ...] = (gpu_toleration(),)
    gpus: int = Field(8, ge=1, le=16, description="GPUs per training/evaluation pod and per node of a multi-node job")
    # Per GPU, so `--gpus 4` asks for half the CPU and memory of 8 (an A100-80GB node: 8 GPUs,
    # ~128 vCPUs, ~1 TiB); the same numbers go to pipeline pods and job nodes.
    cpu_per_gpu: int = Field(4, ge=1)
    cpu_limit_per_gpu: int = Field(8, ge=1)
    memory_per_gpu_gi: int = Field(60, ge=1)
    memory_limit_per_gpu_gi: int = Field(112, ge=1)
    shm_size: str = "64Gi"
    # Volumes (manifests/base/pvc.yaml).
    checkpoint_pvc: str = "spct-checkpoints"
    model_cache_pvc: str = "spct-model-cache"
    data_pvc: str = "spct-data"
    # Identities (manifests/base/serviceaccounts.yaml) and the Secret with MLflow credentials.
    runner_service_account: str = "spct-pipeline-runner"
    trainer_service_account: str = "spct-trainer"
    mlflow_secret: str = "spct-mlflow-credentials"
    image_pull_secrets: tuple[str, ...] = Field(
        (), description="Secrets (kubernetes.io/dockerconfigjson) for a private registry: on every task pod, job "
                        "pod and the predictor; list them in manifests/prerequisites.yaml so the check finds them")
    # Pipeline task behaviour.
    retries: int = Field(2, ge=0)
    backoff: str = "300s"
    timeout_s: int = Field(48 * 3600, gt=0)
    # Multi-node training: nodes > 1 turns rft/grpo/metarm into CPU launchers of a job on GPU nodes.
    nodes: int = Field(1, ge=1, description="nodes per training stage; fixed at compile time with the pods' GPU requests")
    job_kind: Literal["trainjob", "pytorchjob"] = Field("trainjob", description="Kubeflow Trainer v2 or the training operator")
    runtime: str = Field("torch-distributed", description="ClusterTrainingRuntime a TrainJob refers to")
    job_timeout_s: float = Field(48 * 3600, gt=0)
    poll_s: float = Field(15.0, gt=0)
    template: str | None = Field(None, description="job YAML (default: manifests/jobs/<kind>.yaml)")

    @field_validator("shm_size", "backoff")
    @classmethod
    def _nonempty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("shm_size")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not _QUANTITY.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes quantity (e.g. 64Gi)")
        return v

    # What a GPU pod asks for: pipeline GPU tasks and every node of a multi-node job alike.
    @property
    def cpu_request(self) -> str:
        return str(self.cpu_per_gpu * self.gpus)

    @property
    def cpu_limit(self) -> str:
        return str(self.cpu_limit_per_gpu * self.gpus)

    @property
    def memory_request(self) -> str:
        return f"{self.memory_per_gpu_gi * self.gpus}Gi"

    @property
    def memory_limit(self) -> str:
        return f"{self.memory_limit_per_gpu_gi * self.gpus}Gi"

    @property
    def node_selector(self) -> dict[str, str]:
        return {self.gpu_label_key: self.gpu_label_value}

    def with_overrides(self, overrides: dict[str, Any] | None) -> "ClusterSettings":
        """A copy with ``overrides`` applied and validated (unknown keys are refused, naming them)."""
        if not overrides:
            return self
        return ClusterSettings.model_validate(self.model_dump() | dict(overrides))
