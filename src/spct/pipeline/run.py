"""``spct pipeline compile | run --local | submit``.

``components/`` and ``pipelines/`` live at the repository root (they are what a
Kubeflow user reads and edits), so they are imported from there: the checkout, or
``/opt/spct`` in the image.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DIST_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")

# What a local run curates when no --source is given: the profile's own RFT data (declared once, in the
# profile), except for tiny, whose tests run the whole DAG on a smaller draw of it (the uppercase
# sub-kind, configs/tiny.yaml; seed 1 is the training seed).
LOCAL_SOURCES = {
    "tiny": ["builtin:verifiable?n=40&seed=1&categories=string_ops&modes=uppercase&split=train"],
}


def _import_pipelines() -> Any:
    if not (REPO / "pipelines" / "spct_pipeline.py").is_file():
        raise FileNotFoundError(f"{REPO}/pipelines/spct_pipeline.py not found; run from a checkout of the repository")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module("pipelines.spct_pipeline"), importlib.import_module("pipelines.k8s")


def load_pipeline(coldstart: bool = False, **cluster: Any) -> Any:
    """The pipeline function, built with ``ClusterSettings(**cluster)`` (with or without the cold-start task)."""
    mod, _ = _import_pipelines()
    from spct.k8s.settings import ClusterSettings

    return mod.build(ClusterSettings(**cluster), coldstart_stage=coldstart)


def compile_pipeline(out: str | Path, params: Mapping[str, Any] | None = None, *, coldstart: bool = False,
                     **cluster: Any) -> Path:
    """Write the pipeline's IR YAML; ``params`` become the defaults of its parameters."""
    from kfp import compiler

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(load_pipeline(coldstart, **cluster), str(out), pipeline_parameters=dict(params or {}))
    return out


@dataclass
class LocalResult:
    run_dir: Path
    tracking_uri: str
    model_name: str
    seconds: float
    report: dict[str, Any]
    versions: list[Any]


def local_arguments(profile: str, run_dir: Path, tracking_uri: str, model_name: str,
                    overrides: Sequence[str] = (), sources: Sequence[str] | None = None) -> dict[str, Any]:
    from spct.config import load_profile

    prof = load_profile(profile, list(overrides))
    return {
        "image": "spct:local",
        "profile": profile,
        "base_model": prof.model.spec,
        "sources": list(sources or LOCAL_SOURCES.get(profile, [prof.rft.data])),
        "overrides": list(overrides),
        "tracking_uri": tracking_uri,
        "experiment": "spct",
        "model_name": model_name,
        # Small local bases cannot write a parseable critique before a cold start.
        "coldstart_steps": prof.coldstart.steps,
        "workdir": "",
        "job": {},
        # The gate's thresholds: the profile's gate section (GatePolicy's defaults unless it names others).
        **prof.gate.model_dump(),
        "deploy_model": False,  # no cluster here
        "namespace": "spct",
        "serving_values": {},
    }


def run_local(
    profile: str = "tiny",
    run_dir: str | Path = "runs/pipeline",
    *,
    overrides: Sequence[str] = (),
    sources: Sequence[str] | None = None,
    tracking_uri: str | None = None,
    model_name: str = "spct-grm",
    params: Mapping[str, Any] | None = None,
) -> LocalResult:
    """Run the whole DAG on this machine through ``kfp.local`` (subprocesses, this Python)."""
    from kfp import local

    from spct.registry.promotion import list_versions
    from spct.registry.tracking import client_for, resolve_tracking_uri

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    uri = resolve_tracking_uri(tracking_uri, run_dir)
    args = local_arguments(profile, run_dir, uri, model_name, overrides, sources) | dict(params or {})
    # A failing task must fail the run at once here, not sleep through the cluster's retry backoff.
    pipeline = load_pipeline(coldstart=int(args.get("coldstart_steps") or 0) > 0, retries=0)
    # Subprocess tasks inherit the environment: keep them offline and on this Python.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    # Each task is a lone process that picks its own rendezvous: a rank or port this process set for its
    # own in-process training (spct.train.runtime.init_env) would send every task to a port this
    # process's store still holds (EADDRINUSE in the cold start after an in-process stage).
    for var in DIST_VARS:
        os.environ.pop(var, None)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "kfp"), raise_on_error=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The GPU, node-selector and resource settings are for the cluster, and the project image's
        # packages are this venv's; kfp.local warned per task about both, burying the stages' output.
        warnings.filterwarnings("ignore", r"Task .* have no effect in the current local runner", UserWarning)
        warnings.filterwarnings("ignore", r"You may be attemping to run a task", RuntimeWarning)
        pipeline(**args)
    seconds = time.perf_counter() - start
    report = _latest_report(run_dir / "kfp")
    versions = list_versions(client_for(uri), model_name)
    return LocalResult(run_dir, uri, model_name, seconds, report, versions)


def _latest_report(root: Path) -> dict[str, Any]:
    import json

    found = sorted(root.glob("**/evaluate/results/report.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else {}


def submit(
    host: str,
    *,
    experiment: str = "spct",
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    service_account: str = "spct-pipeline-runner",
    namespace: str | None = None,
    package: str | Path | None = None,
) -> str:
    """Compile and submit a run to a Kubeflow Pipelines endpoint; returns the run id.

    The token comes from ``KF_PIPELINES_TOKEN`` if set, otherwise kfp's own lookup
    (service-account token in a pod, or the kube config).
    """
    import tempfile

    import kfp

    client = kfp.Client(host=host, existing_token=os.environ.get("KF_PIPELINES_TOKEN") or None, namespace=namespace)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(package) if package else compile_pipeline(Path(tmp) / "spct.yaml")
        run = client.create_run_from_pipeline_package(
            str(path), arguments=dict(params or {}), run_name=run_name or f"spct-{time.strftime('%Y%m%d-%H%M%S')}",
            experiment_name=experiment, namespace=namespace, service_account=service_account,
        )
    return run.run_id


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["nodes=2", "sources=[\\"/data/x\\"]"]`` -> typed values (YAML scalars, lists, maps)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r} is not of the form key=value")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out
