"""``spct serve`` (the KServe predictor, locally or in a pod) and ``spct deploy`` (the InferenceService)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from spct.cli.app import app


def _fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command("serve")
def serve_command(
    model: str = typer.Option(
        "/mnt/models", "--model", "-m",
        help="models:/NAME@champion, runs:/..., a GRM bundle directory (KServe mounts storageUri at /mnt/models), or an engine spec (tiny, demo)",
    ),
    port: int = typer.Option(8080, "--port", "-p", help="HTTP port"),
    host: str = typer.Option("127.0.0.1", "--host", envvar="SPCT_HOST",
                             help="address to listen on: loopback by default; 0.0.0.0 in a pod (the chart passes it)"),
    api_token: str = typer.Option(None, "--api-token", help="accept this bearer token (prefer $SPCT_API_TOKEN or a file: "
                                                             "a flag shows in the process list)"),
    api_token_file: Path = typer.Option(None, "--api-token-file", help="accept the bearer tokens in this file, one per line; "
                                                                         "$SPCT_API_TOKEN is always accepted too"),
    name: str = typer.Option("spct-grm", "--name", help="model name in the URL: /v1/models/NAME:predict"),
    grpc_port: int = typer.Option(0, "--grpc-port", help="also serve KServe's gRPC on this port (0 = off)"),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16"),
    engine: str = typer.Option(None, "--engine", envvar="SPCT_ENGINE",
                               help="local (default) or openai:URL: generate on that OpenAI-compatible server (vLLM, SGLang, another spct); "
                                    "this process keeps the bundle's tokenizer, voting and meta RM. Key: $SPCT_ENGINE_API_KEY"),
    batching: bool = typer.Option(True, "--batching/--no-batching", help="coalesce concurrent requests into one sampling batch"),
    max_wait_ms: float = typer.Option(10.0, help="longest a request waits for others to join its batch"),
    max_batch_tokens: int = typer.Option(32768, help="token estimate (prompt + new, times k) per batch"),
    max_batch_requests: int = typer.Option(64, help="HTTP requests per batch"),
    token_budget: int = typer.Option(8192, help="padded tokens per generate() micro-batch"),
    max_queue: int = typer.Option(256, help="waiting requests before answering 503"),
    timeout_s: float = typer.Option(120.0, "--timeout-s", help="per-request timeout (answers 504)"),
    grace_s: int = typer.Option(30, "--grace-s", help="seconds to finish in-flight requests on SIGTERM"),
    max_responses: int = typer.Option(8, help="responses per judge item"),
    max_k: int = typer.Option(32, help="largest k a request may ask for"),
    max_prompt_tokens: int = typer.Option(4096, help="largest rendered judge prompt, in tokens"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking/registry URI"),
    cache_dir: Path = typer.Option(None, "--cache-dir", help="where MLflow downloads go (default: a temp dir)"),
) -> None:
    """Serve the GRM (KServe V1/V2, OpenAI completions and chat, OpenRLHF /get_reward) until SIGTERM.

    With a token ($SPCT_API_TOKEN, --api-token-file) every judging and generation route needs
    'Authorization: Bearer <token>'; health, readiness and /metrics stay open for probes.
    """
    from spct.engine import ModelNotAvailable
    from spct.engine.openai import EngineError
    from spct.serving.auth import load_tokens
    from spct.serving.bundle import BundleError
    from spct.serving.predictor import ServerSettings
    from spct.serving.protocol import Limits
    from spct.serving.server import serve

    if engine == "local":  # the same values as spct eval --engine (they share $SPCT_ENGINE)
        engine = None
    if engine is not None and not engine.startswith("openai:"):
        _fail(f"--engine {engine!r}: expected local or openai:URL (e.g. openai:http://vllm:8000/v1)")
    if not 1 <= max_k <= 32:
        _fail(f"--max-k {max_k}: must be in 1..32")
    try:
        tokens = load_tokens(api_token, api_token_file)
    except ValueError as e:
        _fail(str(e))
    settings = ServerSettings(
        name=name, host=host, api_tokens=tokens, engine=engine, http_port=port, grpc_port=grpc_port or 8081, enable_grpc=grpc_port > 0, device=device, dtype=dtype,
        token_budget=token_budget, batching=batching, max_wait_ms=max_wait_ms, max_batch_tokens=max_batch_tokens,
        max_batch_requests=max_batch_requests, max_queue=max_queue, request_timeout_s=timeout_s, grace_period_s=grace_s,
        tracking_uri=tracking_uri, cache_dir=cache_dir,
        limits=Limits(max_responses=max_responses, max_k=max_k, max_prompt_tokens=max_prompt_tokens),
    )
    try:
        serve(model, settings)
    except (BundleError, ModelNotAvailable, EngineError, ValueError, OSError) as e:
        _fail(str(e))


def _set(values: dict, item: str) -> dict:
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key:
        _fail(f"--set {item!r}: expected key.sub=value")
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            _fail(f"--set {item!r}: {part!r} is not a mapping")
    node[parts[-1]] = yaml.safe_load(raw)
    return values


@app.command("deploy")
def deploy_command(
    namespace: str = typer.Option(..., "--namespace", "-n", help="namespace of the InferenceService"),
    model_uri: str = typer.Option("models:/spct-grm@champion", "--model-uri", help="the model the predictor serves"),
    values: list[Path] = typer.Option([], "--values", "-f", help="chart values files (charts/spct-serving/values*.yaml), merged in order"),
    sets: list[str] = typer.Option([], "--set", help="key.sub=value overrides, applied last"),
    release: str = typer.Option("spct-serving", help="release name (the object is named like the chart names it)"),
    canary: int = typer.Option(None, "--canary", help="percent of traffic for the new revision (switches to Serverless)"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow URI the predictor uses"),
    timeout_s: float = typer.Option(900.0, "--timeout-s", help="how long to wait for Ready before rolling back"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only write/print the InferenceService, do not apply"),
    out: Path = typer.Option(None, "--out", help="folder to write inferenceservice.yaml into"),
    force: bool = typer.Option(False, "--force", help="deploy a version the gate did not promote (needs --reason)"),
    reason: str = typer.Option(None, "--reason", help="why --force: written on the model version as "
                               "spct.deploy.forced_reason, with who and when"),
) -> None:
    """Create or update the champion's InferenceService (server-side apply), wait for Ready, roll back on failure.

    Only a version the gate promoted deploys; any other needs --force --reason "..." (recorded on the version).
    """
    import json

    import yaml

    from spct.serving.deploy import DeployError, deploy, merge_values

    merged: dict = {}
    for f in values:
        if not f.is_file():
            _fail(f"--values {f}: no such file")
        try:
            merged = merge_values(yaml.safe_load(f.read_text()) or {}, merged)
        except yaml.YAMLError as e:
            _fail(f"--values {f}: not valid YAML: {e}")
    for item in sets:
        merged = _set(merged, item)
    try:
        result = deploy(model_uri, namespace, values=merged, release=release, tracking_uri=tracking_uri,
                        canary_percent=canary, timeout_s=timeout_s, apply=not dry_run, out_dir=out, force=force,
                        reason=reason)
    except DeployError as e:
        Console(stderr=True).print_json(json.dumps(e.result, default=str))
        _fail(str(e))
    except (ValueError, KeyError) as e:
        _fail(str(e))
    if dry_run and out is None:
        from spct.serving.deploy import build_inference_service

        v = merge_values(merged)
        if tracking_uri:
            v["mlflow"]["trackingUri"] = tracking_uri
        if canary is not None:
            v.update(canaryTrafficPercent=canary, deploymentMode="Serverless")
        typer.echo(yaml.safe_dump(build_inference_service(v, release=release, namespace=namespace, model_uri=model_uri),
                                  sort_keys=False))
        return
    Console().print_json(json.dumps(result, default=str))
