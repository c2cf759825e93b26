"""The MLflow server exactly as manifests/ start it, called the way the cluster calls it.

The container's own shell command (basic-auth app, allowed hosts, artifact proxy) is taken
from the rendered overlay and run here with a SQLite store in place of PostgreSQL and a local
folder in place of S3; only the bind address and port are swapped for loopback and a free port.
Requests then carry the Host headers pipeline pods, the predictor and Kubeflow send
(``spct-mlflow:5000``, the FQDN, a pod IP): a missing port in ``--allowed-hosts`` made MLflow
answer 403 to all of them while ``/health`` kept the probes green.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from spct.k8s import ToolError, tool

REPO = Path(__file__).resolve().parents[1]
ADMIN_PASSWORD = "admin-pass-for-tests-1"
PIPELINE_USER, PIPELINE_PASSWORD = "spct-pipeline", "pipeline-pass-for-tests-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overlay(name: str) -> list[dict]:
    try:
        kubectl = tool("kubectl")
    except ToolError as e:
        pytest.fail(f"{e} (make test runs `make tools` first)")
    out = subprocess.run([str(kubectl), "kustomize", str(REPO / "manifests" / "overlays" / name)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _container_env(objs: list[dict], container: dict, namespace: str, secrets: dict[str, str], tmp: Path) -> dict[str, str]:
    """The environment Kubernetes would give the container, with test stand-ins for Secret values."""
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["configMapRef"]["name"])
        env.update(cm["data"])
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "fieldRef" in e["valueFrom"]:
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[e["name"]] = namespace
        else:
            key = e["valueFrom"]["secretKeyRef"]["key"]
            assert key in secrets, f"the test has no stand-in for Secret key {key}"
            env[e["name"]] = secrets[key]
    # Local stand-ins for what lives outside the pod: S3 and the read-only root filesystem's /tmp.
    env["ARTIFACTS_DESTINATION"] = str(tmp / "artifacts")
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(tmp / "basic_auth.ini")
    env["HOME"] = str(tmp)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("mlflow-manifest")
    objs = _overlay("a100")
    ns = next(o["metadata"]["name"] for o in objs if o["kind"] == "Namespace")
    dep = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "spct-mlflow")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["/bin/sh", "-c"] and len(c["args"]) == 1
    port = _free_port()
    script = c["args"][0]
    assert script.count("--host 0.0.0.0 --port 5000") == 1
    script = script.replace("--host 0.0.0.0 --port 5000", f"--host 127.0.0.1 --port {port}")
    secrets = {
        "backend-store-uri": f"sqlite:///{tmp / 'mlflow.db'}",
        # a '%' as in a URL-encoded password must survive the ini file (configparser interpolation)
        "auth-database-uri": f"sqlite:///{tmp / 'auth%25.db'}",
        "admin-password": ADMIN_PASSWORD, "flask-secret-key": "test-secret-key",
        "AWS_ACCESS_KEY_ID": "unused", "AWS_SECRET_ACCESS_KEY": "unused",
    }
    env = _container_env(objs, c, ns, secrets, tmp)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen(["/bin/sh", "-c", script], env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {(tmp / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mlflow server not up in 120 s: {(tmp / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": url, "namespace": ns, "tmp": tmp}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def call(url: str, path: str, *, host: str, user: tuple[str, str] | None = None, body: dict | None = None) -> int:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    req.add_header("Host", host)
    req.add_header("Content-Type", "application/json")
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def cluster_hosts(ns: str) -> list[str]:
    """Host headers the cluster sends: short and qualified Service names with the port, a pod IP."""
    return ["spct-mlflow:5000", f"spct-mlflow.{ns}:5000", f"spct-mlflow.{ns}.svc:5000",
            f"spct-mlflow.{ns}.svc.cluster.local:5000", "10.244.3.17:5000", "172.20.0.5:5000", "spct-mlflow"]


def test_cluster_host_headers_are_accepted_with_credentials(server) -> None:
    url, ns = server["url"], server["namespace"]
    admin = ("admin", ADMIN_PASSWORD)
    assert call(url, "/api/2.0/mlflow/users/create", host=f"spct-mlflow.{ns}.svc.cluster.local:5000", user=admin,
                body={"username": PIPELINE_USER, "password": PIPELINE_PASSWORD}) == 200
    for host in cluster_hosts(ns):
        assert call(url, "/api/2.0/mlflow/experiments/search?max_results=1", host=host,
                    user=(PIPELINE_USER, PIPELINE_PASSWORD)) == 200, host


def test_no_credentials_401_wrong_host_403_health_open(server) -> None:
    url, ns = server["url"], server["namespace"]
    assert call(url, "/api/2.0/mlflow/experiments/search?max_results=1", host="spct-mlflow:5000") == 401
    assert call(url, "/api/2.0/mlflow/experiments/search?max_results=1", host="spct-mlflow:5000",
                user=("admin", "wrong")) == 401
    # DNS rebinding protection still holds for names the cluster never uses.
    assert call(url, "/api/2.0/mlflow/experiments/search?max_results=1", host="evil.example.com:5000",
                user=("admin", ADMIN_PASSWORD)) == 403
    assert call(url, "/health", host="spct-mlflow:5000") == 200  # kubelet probes: no credentials


def test_pipeline_user_registers_and_moves_the_champion_alias(server, monkeypatch) -> None:
    """What register/promote do, as the pipeline's user through the real client."""
    from mlflow import MlflowClient

    url = server["url"]
    call(url, "/api/2.0/mlflow/users/create", host="spct-mlflow:5000", user=("admin", ADMIN_PASSWORD),
         body={"username": PIPELINE_USER, "password": PIPELINE_PASSWORD})
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", PIPELINE_USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PIPELINE_PASSWORD)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.create_experiment("contract")
    run = client.create_run(exp)
    (server["tmp"] / "note.txt").write_text("artifact through the proxy\n")
    client.log_artifact(run.info.run_id, str(server["tmp"] / "note.txt"))  # proxied: no object-store keys here
    client.create_registered_model("contract-grm")
    mv = client.create_model_version("contract-grm", f"runs:/{run.info.run_id}/note.txt", run_id=run.info.run_id)
    client.set_registered_model_alias("contract-grm", "champion", mv.version)
    assert client.get_model_version_by_alias("contract-grm", "champion").version == mv.version
    assert any((server["tmp"] / "artifacts").rglob("note.txt"))
