"""What each pipeline component does, as plain functions over paths and strings.

Components (``components/``) are one-line wrappers over these, so the same code
runs in a Kubeflow pod, in ``kfp.local`` and in tests. Every stage logs to its own
MLflow run nested under the pipeline's run (``parent_run_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spct.registry.gate import GateMetrics, GatePolicy
from spct.registry.tracking import MlflowLogger, client_for, end_run, stage_run, start_pipeline_run

POINTER = "spct-pointer.json"


@dataclass(frozen=True)
class Tracking:
    uri: str
    parent_run_id: str


def open_pipeline_run(tracking_uri: str, experiment: str, run_key: str, params: Mapping[str, Any]) -> str:
    """The pipeline's MLflow run, tagged with the KFP run id (``run_key``) so the exit handler finds it."""
    run_id = start_pipeline_run(tracking_uri, experiment, f"spct-pipeline-{run_key}", params)
    client_for(tracking_uri).set_tag(run_id, "spct.kfp_run", run_key)
    return run_id


def close_pipeline_run_by_key(tracking_uri: str, experiment: str, run_key: str, succeeded: bool) -> None:
    client = client_for(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], f"tags.`spct.kfp_run` = '{run_key}'") if exp else []
    for run in runs:  # none when the pipeline failed before open_run
        end_run(tracking_uri, run.info.run_id, "FINISHED" if succeeded else "FAILED")


# ---- where a stage writes --------------------------------------------------------


def output_dir(artifact_path: str, workdir: str, run_id: str, stage: str) -> Path:
    """The artifact folder itself, or (``workdir`` set, e.g. the checkpoint PVC) a folder there
    that the artifact points to, so multi-GB checkpoints never go through the artifact store."""
    art = Path(artifact_path)
    art.mkdir(parents=True, exist_ok=True)
    if not workdir:
        return art
    target = Path(workdir) / run_id / stage
    target.mkdir(parents=True, exist_ok=True)
    (art / POINTER).write_text(json.dumps({"path": str(target)}) + "\n")
    return target


def pass_through(artifact_path: str, spec: str) -> None:
    """A Model artifact that names a model instead of holding one (an engine spec or a path on the PVC)."""
    art = Path(artifact_path)
    art.mkdir(parents=True, exist_ok=True)
    (art / POINTER).write_text(json.dumps({"spec": spec}) + "\n")


def model_spec(artifact_path: str) -> str:
    """What to load for a Model artifact: a named spec, or the saved model inside (or pointed to)."""
    ptr = Path(artifact_path) / POINTER
    if ptr.is_file() and "spec" in (data := json.loads(ptr.read_text())):
        return str(data["spec"])
    return str(find_model(resolve_dir(artifact_path)))


def resolve_dir(artifact_path: str) -> Path:
    """An artifact folder, following a pointer written by :func:`output_dir`."""
    p = Path(artifact_path)
    ptr = p / POINTER
    if ptr.is_file() and "path" in (data := json.loads(ptr.read_text())):
        return Path(data["path"])
    return p


# ---- curate ------------------------------------------------------------------------


def curate_stage(sources: Sequence[str], out_dir: Path, tracking: Tracking, *, limit: int | None = None,
                 eval_fraction: float = 0.1) -> dict[str, Any]:
    """Curate ``sources`` into ``out_dir`` (train/eval parquet + manifest.json); log lineage."""
    from spct.data import CurateConfig, curate

    with stage_run(tracking.uri, tracking.parent_run_id, "curate") as log:
        cfg = CurateConfig(limit=limit, eval_fraction=eval_fraction)
        log.log_params({"sources": ",".join(sources), **cfg.model_dump()})
        manifest = curate(list(sources), out_dir, cfg)
        log.log_artifact(out_dir / "manifest.json")
        counts = {f"{split}_examples": float(c.get("total", 0)) for split, c in manifest.counts.items()
                  if isinstance(c, Mapping)}
        log.log_metrics(counts | {f"dropped_{k}": float(v) for k, v in manifest.drops.items()}, step=0)
        for split in ("train", "eval"):
            f = out_dir / f"{split}.parquet"
            if f.is_file():
                digest = manifest.files.get(f"{split}.parquet", {}).get("sha256")
                log.log_dataset(f, name=f"curated-{split}", context="training" if split == "train" else "evaluation",
                                digest=(digest or None) and digest[:36])
        return {"counts": manifest.counts, "drops": manifest.drops}


# ---- training ----------------------------------------------------------------------


def plot_curves(metrics_jsonl: Path, out_png: Path, title: str) -> Path | None:
    """One panel per metric from a training ``metrics.jsonl``."""
    from spct.tracking import read_jsonl_metrics

    if not metrics_jsonl.is_file():
        return None
    recs = read_jsonl_metrics(metrics_jsonl)
    series: dict[str, list[tuple[int, float]]] = {}
    for r in recs:
        for k, v in r["metrics"].items():
            if v is not None:
                series.setdefault(k, []).append((r["step"], v))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(series)[:12]
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        xs, ys = zip(*series[name])
        ax.plot(xs, ys, marker="." if len(xs) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png


def train_stage(
    kind: str,
    profile: str,
    overrides: Sequence[str],
    model_spec: str,
    out_dir: Path,
    tracking: Tracking,
    *,
    data: str | None = None,
    samples: str | None = None,
    nodes: int = 1,
    job: Mapping[str, Any] | None = None,
    procs: int | None = None,
) -> dict[str, Any]:
    """Run one SPCT training stage (rft, grpo, metarm) from ``model_spec``; the model lands in ``out_dir/model``.

    ``nodes > 1`` runs the same trainer as a multi-node TrainJob/PyTorchJob (``job`` holds
    its settings) and waits for it; ``out_dir`` must then be on the shared checkpoint volume.
    On one node the stage runs as ``procs`` ranks under torchrun (default: one per visible GPU,
    :mod:`spct.pipeline.launch`), or in this process when that is 1 (CPU, one GPU).
    """
    from spct.config import load_profile
    from spct.pipeline.launch import launch_local, local_procs
    from spct.tracking import MultiLogger, default_logger
    from spct.train.stages import STAGES

    sets = [*overrides, f"model.spec={model_spec}"]
    if data:
        sets.append(f"{kind}.data={data}")
    if samples:
        sets.append(f"{kind}.samples={samples}")
    prof = load_profile(profile, sets)
    if nodes > 1:
        from spct.k8s.settings import ClusterSettings

        settings = ClusterSettings.model_validate(dict(job or {}))
        procs = settings.gpus  # what torchrun starts on each of the job's nodes
    elif procs is None:
        procs = local_procs()
    # The training CLI (spct rft|grpo|metarm --config P --model M --out D --set k=v): what every rank
    # runs, on this node under torchrun or on every node of a multi-node job.
    args = [kind, "--config", profile, "--model", model_spec, "--out", str(out_dir), "--no-progress",
            *[a for s in sets if not s.startswith("model.spec=") for a in ("--set", s)]]
    with stage_run(tracking.uri, tracking.parent_run_id, kind) as mlog:
        mlog.log_params({"profile": profile, "nodes": nodes, "procs_per_node": procs, **prof.model_dump(mode="json")})
        if nodes > 1 or procs > 1:
            # Rank 0 writes metrics.jsonl and summary.json under out_dir (the shared volume for a job);
            # they are read back into this stage's MLflow run below.
            env = {"MLFLOW_TRACKING_URI": tracking.uri}
            launched: dict[str, Any] = {"nodes": nodes, "procs_per_node": procs}
            if nodes > 1:
                from spct.pipeline.trainjob import job_name, run_training_job

                # One name per task (the same on a retry, which then adopts or replaces the job).
                launched |= run_training_job(settings, args, nodes=nodes, env=env,
                                             name=job_name(tracking.parent_run_id, kind))
            else:
                out_dir.mkdir(parents=True, exist_ok=True)
                launch_local(args, procs, env=env, log=out_dir / "launch.log")
            _replay_curves(out_dir / "metrics.jsonl", mlog)
            written = out_dir / "summary.json"
            summary = {**(json.loads(written.read_text()) if written.is_file() else {}), **launched}
        else:
            logger = MultiLogger(default_logger(out_dir, console_every=max(1, prof.train.log_every)), mlog)
            summary = STAGES[kind].run(prof, out_dir, logger=logger, progress=False)
        numeric = {k: float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            mlog.log_metrics({f"final/{k}": v for k, v in numeric.items()}, step=0)
        png = plot_curves(out_dir / "metrics.jsonl", out_dir / "curves.png", f"{kind} ({prof.name})")
        for f in (png, out_dir / "metrics.jsonl", out_dir / "summary.json"):
            if f is not None and Path(f).is_file():
                mlog.log_artifact(f)
        (out_dir / "stage.json").write_text(json.dumps({"kind": kind, "summary": summary}, default=str, indent=2) + "\n")
        return summary


def _replay_curves(metrics_jsonl: Path, log: MlflowLogger) -> None:
    from spct.tracking import read_jsonl_metrics

    if metrics_jsonl.is_file():
        for rec in read_jsonl_metrics(metrics_jsonl):
            log.log_metrics({k: v for k, v in rec["metrics"].items() if v is not None}, step=rec["step"])


def job_settings(cluster: Mapping[str, Any], image: str, node_selector: Mapping[str, str],
                 tolerations: Sequence[Mapping[str, str]], job: Mapping[str, Any]) -> dict[str, Any]:
    """A multi-node job's ``ClusterSettings`` fields: the compiled ones, the run's image and GPU
    node pool (one selector label), then the user's ``job`` overrides; validated here so a typo
    fails the task at once, naming the field."""
    from spct.k8s.settings import ClusterSettings

    merged = dict(cluster) | {"image": image, "tolerations": [dict(t) for t in tolerations]}
    if node_selector:
        if len(node_selector) != 1:
            raise ValueError(f"gpu_node_selector must hold one label (the GPU product), got {dict(node_selector)}")
        (key, value), = node_selector.items()
        merged |= {"gpu_label_key": key, "gpu_label_value": value}
    return ClusterSettings.model_validate(merged | dict(job)).model_dump(mode="json")


def log_summary(metrics: Any, summary: Mapping[str, Any]) -> None:
    """Put a stage summary's numbers on a KFP ``Metrics`` artifact (flags and text are left out)."""
    for k, v in summary.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            metrics.log_metric(k, float(v))


def find_model(out_dir: Path) -> Path:
    """The saved Hugging Face model a training stage left in ``out_dir``."""
    for cand in (out_dir / "model", out_dir):
        if (cand / "config.json").is_file():
            return cand
    raise FileNotFoundError(f"{out_dir}: no saved model (model/config.json)")


# ---- evaluate ----------------------------------------------------------------------


def gate_set_digest(datasets: Mapping[str, Sequence[Any]]) -> str:
    """Content hash of exactly the examples evaluated: the gate set's identity."""
    h = hashlib.sha256()
    for name in sorted(datasets):
        h.update(name.encode())
        for ex in datasets[name]:
            h.update(json.dumps(ex.to_record(), sort_keys=True).encode())
    return f"sha256:{h.hexdigest()[:16]}"


def gate_metrics(report: Mapping[str, Any], mode: str, gate_set: str) -> GateMetrics:
    """The numbers the gate compares: ``mode`` accuracy and parse rate (n-weighted over datasets), per category,
    and whether ``mode`` clears its position baselines on every dataset."""
    total = sum(int(e["n"]) for e in report["datasets"].values())
    if total == 0:
        raise ValueError("the report holds no evaluated examples")
    acc = sum(float(e[mode]) * int(e["n"]) for e in report["datasets"].values()) / total
    parse = sum(float(e.get("parse_rate", 0.0)) * int(e["n"]) for e in report["datasets"].values()) / total
    cats: dict[str, float] = {}
    for name, e in report["datasets"].items():
        for cat, v in (e["results"][mode].get("categories") or {}).items():
            if isinstance(v, (int, float)):
                cats[f"{name}/{cat}"] = float(v)
    above = all(bool(e["results"][mode].get("above_baselines")) for e in report["datasets"].values())
    return GateMetrics(round(acc, 6), round(parse, 6), gate_set, total, cats, above_baselines=above)


def run_training_data(curated_dir: str | Path, profile: str, overrides: Sequence[str], *, coldstart: bool) -> list[str]:
    """What a pipeline run trained on: the curated ``train.parquet`` (RFT, GRPO, meta RM) and, when the
    cold-start task ran, the profile's cold-start data. Fails when the curated split is not there:
    a held-out check against anything else would pass for the wrong reason."""
    from spct.config import load_profile

    train = Path(curated_dir) / "train.parquet"
    if not train.is_file():
        raise ValueError(f"cannot identify the training data: {train} does not exist (the curate step's 'curated' artifact)")
    specs = [str(train)]
    if coldstart:
        specs.append(load_profile(profile, list(overrides)).coldstart.data)
    return specs


def evaluate_stage(
    model_dir: Path, meta_rm_dir: Path | None, profile: str, overrides: Sequence[str], out_dir: Path, tracking: Tracking,
    *, train_data: Sequence[str], reference: Path | None = None,
) -> tuple[dict[str, Any], GateMetrics]:
    """Evaluate the GRM on the profile's gate set; write report.json/.md, scaling.png, samples.jsonl, gate.json.

    ``train_data`` names what this model trained on (:func:`run_training_data` in a pipeline run):
    every evaluation item is checked against it, and it fits the response-only baseline.
    ``reference`` (the cold-start model of the same run) is judged greedy on the same items, as the
    ``coldstart_greedy`` column, with the paired difference of the GRM's greedy column minus it.
    """
    from spct.config import load_profile
    from spct.data import load
    from spct.engine import Engine
    from spct.evaluate.harness import EvalSettings, dataset_name, evaluate, take
    from spct.evaluate.heldout import check_heldout, load_training_sets

    if not train_data:
        raise ValueError("evaluate_stage needs the training data the model was trained on (train_data)")
    prof = load_profile(profile, list(overrides))
    settings = EvalSettings.from_profile(prof)
    datasets, info = {}, {}
    for spec in prof.eval.data:
        res = load(spec)
        name = dataset_name(spec, set(datasets))
        datasets[name] = take(res.examples, settings.limit)
        info[name] = {"path": spec, "loaded": len(res.examples), "skipped": res.skipped.count}
    # The gate must never be passed on items the model trained on: the same check as spct eval.
    train_sets = load_training_sets(train_data)
    checked = check_heldout(datasets, train_sets)
    for name, h in checked.items():
        info[name]["heldout"] = h
    meta = None
    if meta_rm_dir is not None and meta_rm_dir.is_dir() and any(meta_rm_dir.iterdir()):
        from spct.grm.meta import load_meta_rm

        meta = load_meta_rm(meta_rm_dir)
    with stage_run(tracking.uri, tracking.parent_run_id, "evaluate") as log:
        log.log_params({"profile": profile, "model": str(model_dir), "meta_rm": meta is not None, "ks": settings.ks,
                        "limit": settings.limit, **{f"sampling.{k}": v for k, v in asdict(settings.sampling).items()}})
        engine = Engine.load(str(model_dir), dtype=prof.model.dtype, device=prof.model.device)
        ref = None
        if reference is not None:
            log.log_params({"reference": str(reference)})
            ref = ("coldstart", Engine.load(str(reference), dtype=prof.model.dtype, device=prof.model.device))
        report = evaluate(engine, datasets, settings, meta_rm=meta, out_dir=out_dir, progress=False,
                          model=str(model_dir), data_info=info, train=[ex for exs in train_sets.values() for ex in exs],
                          reference=ref)
        mode = f"voting@{max(settings.ks)}"
        gm = gate_metrics(report, mode, gate_set_digest(datasets))
        (out_dir / "gate.json").write_text(json.dumps(gm.to_dict() | {"mode": mode}, indent=2) + "\n")
        for name, e in report["datasets"].items():
            log.log_metrics({f"{name}/{k}": v for k, v in e.items() if isinstance(v, (int, float))}, step=0)
            for col, res in e["results"].items():
                ci = res.get("ci95") or [float("nan")] * 2
                log.log_metrics({f"{name}/{col}/paper": res["accuracy_paper"], f"{name}/{col}/ci95_low": ci[0],
                                 f"{name}/{col}/ci95_high": ci[1], f"{name}/{col}/distinct": float(res["distinct"]),
                                 f"{name}/{col}/above_baselines": float(res["above_baselines"]),
                                 **{f"{name}/{col}/baseline_{b}": v for b, v in res["baselines"].items()}}, step=0)
            for k in settings.ks:
                log.log_metrics({f"{name}/voting_curve": e[f"voting@{k}"]}, step=k)
            for label, d in (e.get("differences") or {}).items():
                key = f"{name}/diff/{label.replace(' - ', '-minus-')}"
                log.log_metrics({key: d["difference"], f"{key}/ci95_low": d["ci95"][0], f"{key}/ci95_high": d["ci95"][1]}, step=0)
        log.log_metrics({"gate/accuracy": gm.accuracy, "gate/parse_rate": gm.parse_rate}, step=0)
        for f in ("report.json", "report.md", "scaling.png", "samples.jsonl", "gate.json"):
            log.log_artifact(out_dir / f)
        log.set_tags({"spct.gate.set": gm.gate_set})
        return report, gm


# ---- register / promote / deploy ------------------------------------------------------


def register_stage(
    model_dir: Path, meta_rm_dir: Path | None, gate: GateMetrics, model_name: str, bundle_root: Path, tracking: Tracking,
    *, bundle_config: Mapping[str, Any] | None = None,
) -> str:
    """Log the GRM bundle as an MLflow model on a ``register`` run and register it; returns the version."""
    from spct.registry.grm_model import build_bundle, log_grm, register_grm

    meta = meta_rm_dir if meta_rm_dir is not None and meta_rm_dir.is_dir() and any(meta_rm_dir.iterdir()) else None
    bundle = build_bundle(model_dir, bundle_root, meta_rm_dir=meta, name=model_name, **dict(bundle_config or {}))
    with stage_run(tracking.uri, tracking.parent_run_id, "register") as log:
        info = log_grm(bundle, log.run_id, tracking.uri)
        mv = register_grm(client_for(tracking.uri), model_name, info, gate, log.run_id,
                          tags={"spct.pipeline_run": tracking.parent_run_id})
        log.set_tags({"spct.registered_model": model_name, "spct.registered_version": str(mv.version)})
        log.log_metrics({"gate/accuracy": gate.accuracy, "gate/parse_rate": gate.parse_rate}, step=0)
        return str(mv.version)


def promote_stage(model_name: str, version: str, policy: GatePolicy, tracking: Tracking) -> dict[str, Any]:
    """The gate: move ``champion`` to ``version`` if it passes; the decision is tagged on the version."""
    from spct.registry.promotion import promote

    with stage_run(tracking.uri, tracking.parent_run_id, "promote") as log:
        log.log_params({"model": model_name, "version": version, **policy.model_dump()})
        d = promote(client_for(tracking.uri), model_name, version, policy)
        log.log_metrics({"promoted": float(d.promote)}, step=0)
        log.set_tags({"spct.gate.decision": "promoted" if d.promote else "refused", "spct.gate.reasons": "; ".join(d.reasons)})
        return {"promoted": d.promote, "reasons": d.reasons, "version": version}


def deploy_stage(model_name: str, version: str, namespace: str, tracking: Tracking, *, release: str | None = None,
                 image: str | None = None, profile: str = "a100", values: Mapping[str, Any] | None = None,
                 apply: bool = True, out_dir: Path | None = None, pull_secrets: Sequence[str] = ()) -> dict[str, Any]:
    """Install or upgrade the serving chart pinned to ``models:/NAME/VERSION`` (spct.serving.deploy).

    The pipeline runs this only after its gate promoted ``version``; the deploy itself checks that
    again (the version's ``spct.gate.decision``) and is never forced from here. ``pull_secrets`` (the
    run's ``ClusterSettings.image_pull_secrets``) become the chart's ``imagePullSecrets`` unless
    ``values`` set them."""
    from spct.serving import deploy as serving_deploy

    values = serving_deploy.with_pull_secrets(values, pull_secrets)

    with stage_run(tracking.uri, tracking.parent_run_id, "deploy") as log:
        result = serving_deploy.deploy(
            f"models:/{model_name}/{version}", namespace, release=release or serving_deploy.RELEASE,
            tracking_uri=tracking.uri, image=image, profile=profile, values=dict(values or {}), apply=apply,
            out_dir=out_dir,
        )
        log.set_tags({"spct.deploy.namespace": namespace, "spct.deploy.version": version,
                      "spct.deploy.release": result.get("release", "")})
        return dict(result)
