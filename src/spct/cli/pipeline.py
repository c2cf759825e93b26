"""``spct pipeline compile|run|submit``, ``spct cluster check``, ``spct promote``, ``spct rollback``, ``spct models list``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from spct.cli.app import app

console = Console()
pipeline_app = typer.Typer(help="Compile, run locally or submit the SPCT Kubeflow pipeline.", no_args_is_help=True)
models_app = typer.Typer(help="Registered GRM versions in MLflow.", no_args_is_help=True)
cluster_app = typer.Typer(help="Check what would be applied to a cluster, before applying it.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(models_app, name="models")
app.add_typer(cluster_app, name="cluster")


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _uri(tracking_uri: str | None, run_dir: Path | None) -> str:
    from spct.registry.tracking import resolve_tracking_uri

    if not tracking_uri and not os.environ.get("MLFLOW_TRACKING_URI") and run_dir is not None:
        db = Path(run_dir) / "mlflow" / "mlflow.db"
        if not db.is_file():
            _fail(f"no MLflow store at {db}; pass --tracking-uri, set MLFLOW_TRACKING_URI, or point --run-dir at a pipeline run")
    try:
        return resolve_tracking_uri(tracking_uri, run_dir)
    except ValueError as e:
        _fail(str(e))


TRACKING = typer.Option(None, "--tracking-uri", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else the run directory's store).")
RUN_DIR = typer.Option(Path("runs/pipeline"), "--run-dir", help="A local pipeline run (its embedded MLflow store).")
MODEL = typer.Option("spct-grm", "--model", "-m", help="Registered model name.")


SETTING = typer.Option([], "--setting", "-s", help="ClusterSettings field=value (e.g. nodes=4, data_pvc=x), repeatable.")


def _settings(setting: list[str], gpu_product: str | None, gpu_label: str | None, gpus: int | None, nodes: int | None) -> Any:
    """The one ClusterSettings from the command line; a bad field is refused, naming it."""
    from pydantic import ValidationError

    from spct.k8s.settings import ClusterSettings
    from spct.pipeline.run import parse_params

    fields = parse_params(setting)
    for key, value in (("gpu_label_value", gpu_product), ("gpu_label_key", gpu_label), ("gpus", gpus), ("nodes", nodes)):
        if value is not None:
            fields[key] = value
    try:
        return ClusterSettings(**fields)
    except ValidationError as e:
        _fail("; ".join(f"cluster setting {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()))


@pipeline_app.command("compile")
def compile_command(
    out: Path = typer.Option(Path("spct_pipeline.yaml"), "--out", "-o", help="IR YAML to write."),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value: a parameter's default in the YAML."),
    gpu_product: str | None = typer.Option(None, help="Value of the node label GPU tasks select (default NVIDIA-A100-SXM4-80GB)."),
    gpu_label: str | None = typer.Option(None, help="Node label key for the GPU product (default nvidia.com/gpu.product)."),
    gpus: int | None = typer.Option(None, min=1, help="GPUs per training/evaluation pod (CPU and memory scale with it; default 8)."),
    nodes: int | None = typer.Option(None, min=1, help="Nodes per training stage (> 1: multi-node jobs; default 1)."),
    coldstart: bool = typer.Option(False, "--coldstart/--no-coldstart", help="Include the cold-start stage (small bases)."),
    setting: list[str] = SETTING,
) -> None:
    """Write the pipeline's IR YAML (upload it in the Kubeflow UI or submit it)."""
    from spct.pipeline.run import compile_pipeline, parse_params

    s = _settings(setting, gpu_product, gpu_label, gpus, nodes)
    try:
        params = parse_params(param)
        path = compile_pipeline(out, params, coldstart=coldstart, **s.model_dump(exclude_unset=True))
    except (ValueError, TypeError) as e:
        _fail(str(e))
    console.print(f"wrote {path}")


@cluster_app.command("check")
def cluster_check_command(
    overlay: str = typer.Option("a100", "--overlay", help="manifests/overlays/<name> or a kustomization folder."),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline run parameter key=value, as you will submit it."),
    gpu_product: str | None = typer.Option(None, help="As for `pipeline compile`."),
    gpu_label: str | None = typer.Option(None, help="As for `pipeline compile`."),
    gpus: int | None = typer.Option(None, min=1, help="As for `pipeline compile`."),
    nodes: int | None = typer.Option(None, min=1, help="As for `pipeline compile`."),
    coldstart: bool = typer.Option(False, "--coldstart/--no-coldstart", help="As for `pipeline compile`."),
    setting: list[str] = SETTING,
    serving_profile: str = typer.Option("a100", "--serving-profile", help="default | a100: the chart values the deploy step uses."),
    values: list[Path] = typer.Option([], "--values", "-f", help="Extra chart values files, as passed to the deploy step."),
    prerequisites: Path = typer.Option(None, "--prerequisites", help="What the cluster provides (default manifests/prerequisites.yaml)."),
    kfp_version: str = typer.Option(None, "--kfp-version", help="The KFP backend's version (its UI footer or `kubectl -n kubeflow get deploy ml-pipeline -o jsonpath='{.spec.template.spec.containers[0].image}'`): refused below what the pipeline needs."),
) -> None:
    """Render pipeline, overlay, chart and job templates for these values; print each disagreement on one line."""
    import yaml

    from spct.k8s.check import PREREQUISITES, check
    from spct.pipeline.run import parse_params
    from spct.serving.deploy import merge_values

    s = _settings(setting, gpu_product, gpu_label, gpus, nodes)
    chart_values: dict = {}
    for f in values:
        if not f.is_file():
            _fail(f"--values {f}: no such file")
        chart_values = merge_values(yaml.safe_load(f.read_text()) or {}, chart_values)
    prereq = prerequisites or PREREQUISITES
    if not Path(prereq).is_file():
        _fail(f"--prerequisites {prereq}: no such file")
    try:
        problems = check(overlay, settings=s, params=parse_params(param), coldstart=coldstart,
                         serving_profile=serving_profile, serving_values=chart_values, prerequisites=prereq,
                         kfp_version=kfp_version)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    for p in problems:
        typer.echo(str(p))
    if problems:
        Console(stderr=True).print(f"[red]{len(problems)} problem(s)[/red] for overlay {overlay}", highlight=False)
        raise typer.Exit(1)
    console.print(f"ok: overlay {overlay}, the compiled pipeline, the chart ({serving_profile}) and the job templates agree",
                  highlight=False)


def _versions_table(rows: list[Any], title: str) -> Table:
    t = Table(title=title)
    for c in ("version", "aliases", "accuracy", "parse", "gate set", "decision", "prev. champion", "created"):
        t.add_column(c, justify="right" if c in ("version", "accuracy", "parse") else "left")
    for r in rows:
        m = r.metrics
        t.add_row(r.version, ", ".join(r.aliases), f"{100 * m.accuracy:.1f}" if m else "", f"{100 * m.parse_rate:.0f}%" if m else "",
                  m.gate_set if m else "", r.decision, r.previous_champion, r.created)
    return t


@pipeline_app.command("run")
def run_command(
    local: bool = typer.Option(False, "--local", help="Run the whole DAG on this machine (kfp.local)."),
    profile: str = typer.Option("tiny", "--profile", help="tiny | demo (a profile name or YAML path)."),
    run_dir: Path = typer.Option(Path("runs/pipeline"), "--run-dir", "--out", help="Artifacts and the embedded MLflow store."),
    sets: list[str] = typer.Option([], "--set", help="Profile override key.sub=value (repeatable)."),
    source: list[str] = typer.Option([], "--source", help="Data source for curation (default: the embedded data)."),
    tracking_uri: str | None = TRACKING,
    model: str = MODEL,
) -> None:
    """Run the pipeline locally: curate, RFT, GRPO, meta RM, evaluate, register, gate."""
    if not local:
        _fail("only --local runs here; use `spct pipeline submit --host URL` for a Kubeflow cluster")
    from spct.pipeline.run import run_local

    try:
        res = run_local(profile, run_dir, overrides=sets, sources=source or None, tracking_uri=tracking_uri, model_name=model)
    except Exception as e:  # kfp raises RuntimeError naming the failed task; its log is above
        _fail(f"pipeline failed: {e}")
    from spct.cli.evaluate import print_results, print_table

    if res.report:
        print_results(res.report)
    print_table(_versions_table(res.versions, f"registered model {res.model_name}"))
    newest = res.versions[0] if res.versions else None
    if newest is not None:
        console.print(f"version {newest.version}: aliases {', '.join(newest.aliases) or '(none)'}; gate: {newest.decision or 'n/a'}")
    console.print(f"pipeline finished in {res.seconds:.0f} s; artifacts under {res.run_dir / 'kfp'}")
    if res.tracking_uri.startswith("sqlite:///"):
        console.print(f"open the MLflow UI on these results:\n  mlflow ui --backend-store-uri {res.tracking_uri} --port 5000")
    else:
        console.print(f"MLflow: {res.tracking_uri}")


@pipeline_app.command("submit")
def submit_command(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines endpoint, e.g. https://kubeflow.example.com/pipeline"),
    experiment: str = typer.Option("spct", "--experiment", help="KFP experiment name."),
    param: list[str] = typer.Option([], "--param", "-p", help="Pipeline parameter key=value (repeatable)."),
    namespace: str | None = typer.Option(None, "--namespace", help="Kubeflow profile namespace (multi-user)."),
    service_account: str = typer.Option("spct-pipeline-runner", "--service-account"),
    package: Path | None = typer.Option(None, "--package", help="A compiled YAML (default: compile now)."),
) -> None:
    """Submit a run; the token comes from KF_PIPELINES_TOKEN or the kube config."""
    from spct.pipeline.run import parse_params, submit

    try:
        run_id = submit(host, experiment=experiment, params=parse_params(param), namespace=namespace,
                        service_account=service_account, package=package)
    except ValueError as e:
        _fail(str(e))
    console.print(f"submitted run {run_id} to {host} (experiment {experiment})")


def _gate_option(field: str, *decls: str) -> Any:
    """A `spct promote` threshold option: help from GatePolicy's field description, default shown from
    GatePolicy (the value is None unless given, so a --profile's gate section can fill it)."""
    from spct.registry.gate import GatePolicy

    f = GatePolicy.model_fields[field]
    shown = str(f.default).lower() if isinstance(f.default, bool) else f"{f.default:g}"
    return typer.Option(None, *decls, help=f"{f.description[0].upper()}{f.description[1:]} "
                        f"(default: the --profile's gate.{field}, else {shown}).", show_default=False)


@app.command("promote")
def promote_command(
    model: str = MODEL,
    version: str | None = typer.Option(None, "--version", help="Default: the 'challenger' alias."),
    profile: str | None = typer.Option(None, "--profile", help="Take the thresholds from this profile's gate section "
                                       "(as `spct pipeline run --profile` does); the options below override them."),
    tolerance: float | None = _gate_option("tolerance", "--tolerance"),
    min_parse_rate: float | None = _gate_option("min_parse_rate", "--min-parse-rate"),
    max_category_drop: float | None = _gate_option("max_category_drop", "--max-category-drop"),
    require_above_baselines: bool | None = _gate_option(
        "require_above_baselines", "--require-above-baselines/--no-require-above-baselines"
    ),
    tracking_uri: str | None = TRACKING,
    run_dir: Path = RUN_DIR,
) -> None:
    """Gate a version against the champion and the best promoted version on the same gate set; move 'champion' if it passes."""
    from pydantic import ValidationError

    from spct.config import ConfigError, load_profile
    from spct.registry import GatePolicy, RegistryError, client_for, promote

    given = {k: v for k, v in (("tolerance", tolerance), ("min_parse_rate", min_parse_rate),
                               ("max_category_drop", max_category_drop),
                               ("require_above_baselines", require_above_baselines)) if v is not None}
    try:
        base = load_profile(profile).gate if profile else GatePolicy()
        policy = GatePolicy.model_validate(base.model_dump() | given)
    except ConfigError as e:
        _fail(str(e))
    except ValidationError as e:
        _fail("; ".join(f"--{'-'.join(map(str, err['loc'])).replace('_', '-')}: {err['msg']}" for err in e.errors()))
    uri = _uri(tracking_uri, run_dir)
    try:
        d = promote(client_for(uri), model, version, policy)
    except (RegistryError, ValueError) as e:
        _fail(str(e))
    verdict = "[green]promoted[/green]" if d.promote else "[red]refused[/red]"
    console.print(f"{model} version {version or 'challenger'}: {verdict}")
    for r in d.reasons:
        console.print(f"  - {r}", highlight=False)
    if not d.promote:
        raise typer.Exit(1)


@app.command("rollback")
def rollback_command(
    model: str = MODEL,
    tracking_uri: str | None = TRACKING,
    run_dir: Path = RUN_DIR,
    deploy: bool = typer.Option(False, "--deploy/--no-deploy", help="Also serve the restored version: helm upgrade "
                                "--reuse-values of the release with models:/NAME/VERSION, then wait for Ready."),
    namespace: str = typer.Option("spct", "--namespace", "-n", help="Namespace of the serving release (with --deploy)."),
    timeout_s: float = typer.Option(1800.0, "--timeout-s", help="How long to wait for Ready (with --deploy)."),
) -> None:
    """Move 'champion' back to the version it replaced (and, with --deploy, serve that version again)."""
    from spct.registry import RegistryError, client_for, rollback

    uri = _uri(tracking_uri, run_dir)
    try:
        frm, to = rollback(client_for(uri), model)
    except RegistryError as e:
        _fail(str(e))
    console.print(f"{model}: champion moved from version {frm} back to {to}")
    if not deploy:
        console.print(f"serving still runs the version it was deployed with; `spct rollback --deploy` or "
                      f"`spct deploy --model-uri models:/{model}/{to}` rolls it back too")
        return
    from spct.serving.deploy import RELEASE, DeployError
    from spct.serving.deploy import deploy as helm_deploy

    try:
        # tracking_uri=None: the live release keeps the predictor's own MLflow URI (--reuse-values); this
        # command's URI is only where the restored version's gate decision is read.
        result = helm_deploy(f"models:/{model}/{to}", namespace, release=RELEASE, tracking_uri=None, registry_uri=uri,
                             reuse_values=True, timeout_s=timeout_s)
    except (DeployError, ValueError) as e:
        _fail(f"champion is back on version {to}, but serving it failed: {e}")
    console.print(f"{namespace}/{result['name']} serves models:/{model}/{to} ({result.get('reason', '')})")


@models_app.command("list")
def models_list_command(model: str = MODEL, tracking_uri: str | None = TRACKING, run_dir: Path = RUN_DIR) -> None:
    """Versions, aliases and gate metrics."""
    from mlflow.exceptions import MlflowException

    from spct.registry import client_for, list_versions

    try:
        rows = list_versions(client_for(_uri(tracking_uri, run_dir)), model)
    except MlflowException as e:
        _fail(f"{model}: {e.message}")
    from spct.cli.evaluate import print_table

    print_table(_versions_table(rows, f"registered model {model}"))
