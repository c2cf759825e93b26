"""MLflow tracking for pipeline runs: one parent run per pipeline, one nested run per stage.

With no ``MLFLOW_TRACKING_URI`` the store is embedded in the run directory
(``<run_dir>/mlflow/mlflow.db`` plus ``artifacts/``), so a local run needs no server.
Stages run in separate processes (pods), so the parent run is passed by id.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient

DEFAULT_EXPERIMENT = "spct"


def local_store(run_dir: str | Path) -> tuple[str, str]:
    """``(tracking_uri, artifact_root)`` of the embedded store inside ``run_dir``."""
    d = Path(run_dir).resolve() / "mlflow"
    d.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{d / 'mlflow.db'}", (d / "artifacts").as_uri()


def resolve_tracking_uri(uri: str | None = None, run_dir: str | Path | None = None) -> str:
    """Explicit URI, else ``$MLFLOW_TRACKING_URI``, else the embedded store in ``run_dir``."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if run_dir is None:
        raise ValueError("no MLflow tracking URI: pass one, set MLFLOW_TRACKING_URI, or give a run directory for the embedded store")
    return local_store(run_dir)[0]


def client_for(uri: str) -> "MlflowClient":
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def ensure_experiment(client: "MlflowClient", name: str = DEFAULT_EXPERIMENT) -> str:
    """The experiment's id, created if missing; a sqlite store keeps its artifacts next to the database."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    uri = client.tracking_uri if hasattr(client, "tracking_uri") else client._tracking_client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "artifacts").as_uri()
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another stage created it between our read and our create.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def start_pipeline_run(uri: str, experiment: str, run_name: str, params: Mapping[str, Any] | None = None) -> str:
    """Create the parent run every stage nests under; returns its id."""
    client = client_for(uri)
    exp_id = ensure_experiment(client, experiment)
    run = client.create_run(exp_id, run_name=run_name, tags={"spct.kind": "pipeline"})
    if params:
        _log_params(client, run.info.run_id, params)
    return run.info.run_id


def end_run(uri: str, run_id: str, status: str = "FINISHED") -> None:
    client_for(uri).set_terminated(run_id, status=status)


def _log_params(client: "MlflowClient", run_id: str, params: Mapping[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(k), str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def metric_key(name: str) -> str:
    """MLflow's allowed characters: ``voting@4`` -> ``voting_at_4``."""
    return re.sub(r"[^\w\-. :/]", "_", str(name).replace("@", "_at_"))


def _is_rank0() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class MlflowLogger:
    """``spct.tracking.MetricsLogger`` on an MLflow run; every call is a no-op off rank 0."""

    def __init__(self, uri: str, run_id: str, max_artifact_mb: float | None = None) -> None:
        self.uri = uri
        self.run_id = run_id
        # Stage runs skip model folders: the GRM is logged once, as a model, by the register stage.
        self.max_artifact_mb = max_artifact_mb
        self.enabled = _is_rank0()
        self._client = client_for(uri) if self.enabled else None

    @classmethod
    def nested(cls, uri: str, parent_run_id: str, stage: str, tags: Mapping[str, str] | None = None,
               max_artifact_mb: float | None = 50.0) -> "MlflowLogger":
        """A new run named ``stage`` under the pipeline run ``parent_run_id``."""
        client = client_for(uri)
        parent = client.get_run(parent_run_id)
        run = client.create_run(
            parent.info.experiment_id,
            run_name=stage,
            tags={"mlflow.parentRunId": parent_run_id, "spct.stage": stage, **(tags or {})},
        )
        return cls(uri, run.info.run_id, max_artifact_mb)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self._client is not None and params:
            from spct.tracking import flatten

            _log_params(self._client, self.run_id, flatten(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(metric_key(k), float(v), now, int(step or 0))
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        ]
        for i in range(0, len(items), 500):
            self._client.log_batch(self.run_id, metrics=items[i : i + 500])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self._client is None:
            return
        p = Path(path)
        if self.max_artifact_mb is not None:
            size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size if p.exists() else 0
            if size > self.max_artifact_mb * 2**20:
                self._client.set_tag(self.run_id, f"spct.artifact_not_logged.{p.name}", f"{p} ({size / 2**20:.0f} MB)")
                return
        if p.is_dir():
            self._client.log_artifacts(self.run_id, str(p), artifact_path)
        elif p.is_file():
            self._client.log_artifact(self.run_id, str(p), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self._client is not None:
            for k, v in tags.items():
                self._client.set_tag(self.run_id, k, str(v))

    def log_dataset(self, parquet: str | Path, name: str, context: str, digest: str | None = None) -> None:
        """Dataset lineage (``mlflow.data``): the run's input, with its source path and schema."""
        if self._client is None:
            return
        import mlflow.data
        import pandas as pd
        from mlflow.entities import DatasetInput, InputTag

        df = pd.read_parquet(parquet)
        ds = mlflow.data.from_pandas(df, source=str(Path(parquet).resolve()), name=name, digest=digest)
        self._client.log_inputs(
            self.run_id, datasets=[DatasetInput(ds._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])]
        )

    def close(self, status: str = "FINISHED") -> None:
        if self._client is not None:
            self._client.set_terminated(self.run_id, status=status)
            self._client = None


@contextmanager
def stage_run(uri: str, parent_run_id: str, stage: str) -> Iterator[MlflowLogger]:
    """A nested stage run that ends FAILED when the block raises."""
    logger = MlflowLogger.nested(uri, parent_run_id, stage)
    try:
        yield logger
    except BaseException:
        logger.close("FAILED")
        raise
    logger.close()
