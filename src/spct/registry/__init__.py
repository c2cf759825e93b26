"""MLflow tracking, GRM model logging, the promotion gate, rollback and listing."""

from spct.registry.gate import Decision, GateMetrics, GatePolicy, decide
from spct.registry.promotion import (
    CHALLENGER,
    CHAMPION,
    RegistryError,
    VersionRow,
    best_promoted,
    list_versions,
    promote,
    promotion_lock,
    register_version,
    rollback,
)
from spct.registry.tracking import MlflowLogger, client_for, local_store, resolve_tracking_uri, stage_run, start_pipeline_run

__all__ = [
    "Decision", "GateMetrics", "GatePolicy", "decide",
    "CHALLENGER", "CHAMPION", "RegistryError", "VersionRow", "best_promoted", "list_versions", "promote", "promotion_lock",
    "register_version", "rollback",
    "MlflowLogger", "client_for", "local_store", "resolve_tracking_uri", "stage_run", "start_pipeline_run",
]
