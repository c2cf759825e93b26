"""The predictor's parts without HTTP: request parsing, bundle resolution (MLflow included), batching, meta RM."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from spct.serving.batcher import BatchPolicy, Batcher, QueueFull
from spct.serving.bundle import BundleError, find_bundle_dir, resolve
from spct.serving.protocol import Defaults, Limits, RequestError, parse_v1, parse_v2

MSG = [{"role": "user", "content": "What is 2 + 2?"}]


# -- request validation -------------------------------------------------------------------------


def test_v1_parses_messages_prompt_and_options() -> None:
    reqs = parse_v1({"instances": [
        {"messages": MSG, "responses": ["4", "5"], "k": 3, "seed": 9, "temperature": 0, "return_critiques": True},
        {"prompt": "Hi", "responses": ["Hello"]},
    ]}, defaults=Defaults(k=2, temperature=0.7))
    assert reqs[0].k == 3 and reqs[0].seed == 9 and reqs[0].temperature == 0.0 and reqs[0].return_critiques
    assert reqs[1].k == 2 and reqs[1].temperature == 0.7 and reqs[1].messages[0].role == "user"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "instances"),
        ({"instances": {}}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": [{"responses": ["a"]}]}, "instances[0].messages"),
        ({"instances": [{"prompt": "q", "messages": MSG, "responses": ["a"]}]}, "instances[0].messages"),
        ({"instances": [{"prompt": "q"}]}, "instances[0].responses"),
        ({"instances": [{"prompt": "q", "responses": ["a", " "]}]}, "instances[0].responses[1]"),
        ({"instances": [{"prompt": "q", "responses": ["a"], "k": True}]}, "instances[0].k"),
        ({"instances": [{"prompt": "q", "responses": ["a"], "k": 2, "k_meta": 3}]}, "instances[0].k_meta"),
        ({"instances": [{"prompt": "q", "responses": ["a"], "temperature": 9}]}, "instances[0].temperature"),
        ({"instances": [{"messages": [{"role": "assistant", "content": "x"}], "responses": ["a"]}]}, "instances[0].messages[0].role"),
        ({"instances": [{"messages": [{"role": "bot", "content": "x"}], "responses": ["a"]}]}, "instances[0].messages[0].role"),
        ({"instances": [{"prompt": "q", "responses": ["a"], "shoe": 1}]}, "instances[0].shoe"),
        ({"instances": [{"prompt": "x" * 20_000, "responses": ["a"]}]}, "instances[0].prompt"),
    ],
)
def test_v1_errors_name_the_field(body: dict, field: str) -> None:
    with pytest.raises(RequestError) as e:
        parse_v1(body)
    assert e.value.field == field and 400 <= e.value.status < 500
    assert "x" * 50 not in str(e.value)  # messages never echo request content


def _v2(**extra: object) -> dict:
    return {"inputs": [
        {"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["q"]},
        {"name": "responses", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
    ], **extra}


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b.pop("inputs"), "inputs"),
        (lambda b: b["inputs"][1].update(shape=[3]), "inputs[1].shape"),
        (lambda b: b["inputs"][1].update(datatype="INT64"), "inputs[1].datatype"),
        (lambda b: b["inputs"][1].update(data=["a", 2]), "inputs[1].data[1]"),
        (lambda b: b["inputs"].append({"name": "k", "shape": [1], "datatype": "INT32", "data": [2]}) or b.update(parameters={"k": 3}), "parameters.k"),
        (lambda b: b.update(parameters={"k": None}), "parameters.k"),
        (lambda b: b.update(outputs=[{"name": "nope"}]), "outputs[0].name"),
        (lambda b: b["inputs"].append({"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["q"]}), "inputs[2].name"),
        (lambda b: b["inputs"].__setitem__(0, {"name": "messages", "shape": [1], "datatype": "BYTES", "data": ["{bad"]}), "inputs[0].data[0]"),
    ],
)
def test_v2_errors_name_the_field(mutate, field: str) -> None:
    body = _v2()
    mutate(body)
    with pytest.raises(RequestError) as e:
        parse_v2(body)
    assert e.value.field == field


def test_v2_options_from_tensors_and_parameters() -> None:
    body = _v2(parameters={"temperature": 0.2, "return_critiques": True})
    body["inputs"].append({"name": "k", "shape": [1], "datatype": "INT64", "data": [5]})
    r = parse_v2(body)
    assert (r.k, r.temperature, r.return_critiques, r.responses) == (5, 0.2, True, ("a", "b"))


def test_limits_are_configurable() -> None:
    with pytest.raises(RequestError) as e:
        parse_v1({"instances": [{"prompt": "q", "responses": ["a", "b", "c"]}]}, Limits(max_responses=2))
    assert e.value.status == 413


# -- the dynamic batcher ----------------------------------------------------------------------------


def test_batcher_coalesces_concurrent_jobs_and_keeps_order() -> None:
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(0.05)
        return [x * 10 for x in items]

    b: Batcher[int, int] = Batcher(run, BatchPolicy(max_wait_s=0.2, max_batch_requests=16))
    b.start()
    futs = [b.submit([i, i + 100], tokens=1) for i in range(8)]
    assert [f.result(10) for f in futs] == [[i * 10, (i + 100) * 10] for i in range(8)]
    assert len(calls) < 8 and max(map(len, calls)) > 2
    b.stop(5)


def test_batcher_off_runs_one_request_per_call_and_bounds_the_queue() -> None:
    gate = threading.Event()
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        gate.wait(10)
        calls.append(list(items))
        return items

    b: Batcher[int, int] = Batcher(run, BatchPolicy(max_batch_requests=1, max_wait_s=0, max_queue=2))
    b.start()
    futs = [b.submit([0], 1)]
    time.sleep(0.1)  # the worker holds job 0; two more may wait
    futs += [b.submit([1], 1), b.submit([2], 1)]
    with pytest.raises(QueueFull):
        b.submit([3], 1)
    futs[2].cancel()  # a caller that gave up is skipped, never run
    gate.set()
    assert futs[0].result(10) == [0] and futs[1].result(10) == [1]
    b.stop(5)
    assert calls == [[0], [1]]


def test_batcher_reports_failures_to_every_caller() -> None:
    def run(items: list[int]) -> list[int]:
        raise RuntimeError("boom")

    b: Batcher[int, int] = Batcher(run, BatchPolicy(max_wait_s=0.05))
    b.start()
    futs = [b.submit([i], 1) for i in range(3)]
    for f in futs:
        with pytest.raises(RuntimeError, match="boom"):
            f.result(10)
    b.stop(5)


# -- model sources ------------------------------------------------------------------------------------


def _tiny_bundle(root: Path, meta: bool = False, **cfg: object) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from spct.engine.models import tiny_dir

    out = root / "grm"
    shutil.copytree(tiny_dir(), out)
    conf = {"name": "spct-grm", "k": 2, "max_new_tokens": 4, **cfg}
    if meta:
        from spct.engine import load_model
        from spct.train.metarm import MetaRewardModel

        lm, tok = load_model("tiny", device="cpu")
        MetaRewardModel.from_causal_lm(lm, tok).save(out / "meta_rm")
        conf["meta_rm"] = "meta_rm"
    (out / "spct.json").write_text(json.dumps(conf))
    return out


def test_resolve_local_dirs_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a" / "data" / "grm").mkdir(parents=True)
    (tmp_path / "a" / "data" / "grm" / "spct.json").write_text('{"k": 3}')
    (tmp_path / "a" / "data" / "grm" / "config.json").write_text("{}")
    assert find_bundle_dir(tmp_path / "a") == tmp_path / "a" / "data" / "grm"
    b = resolve(str(tmp_path / "a"))
    assert b.config.k == 3 and b.version == "local" and b.meta_rm_dir is None
    (tmp_path / "a" / "data" / "grm" / "spct.json").write_text('{"k": 99}')
    with pytest.raises(BundleError, match="spct.json: k"):
        resolve(str(tmp_path / "a"))
    with pytest.raises(BundleError, match="unsupported scheme"):
        resolve("s3://bucket/grm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="neither"):
        resolve(str(tmp_path / "empty"))
    assert resolve("tiny").spec == "tiny"  # an engine spec passes through


def test_serve_champion_from_mlflow_with_meta_rm(tmp_path: Path) -> None:
    """A real local MLflow store: log the bundle, register it, alias it champion, load and judge with k_meta."""
    import mlflow

    from spct.serving.predictor import GRMModel, ServerSettings

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("serving", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(exp)
    client.log_artifacts(run.info.run_id, str(_tiny_bundle(tmp_path, meta=True, k_meta=1)), artifact_path="model/grm")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("spct-grm")
    mv = client.create_model_version("spct-grm", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("spct-grm", "champion", mv.version)

    model = GRMModel("models:/spct-grm@champion", ServerSettings(device="cpu", tracking_uri=uri, cache_dir=tmp_path / "dl"))
    assert not model.ready
    assert model.load() and model.ready and model.has_meta_rm
    assert model.version == str(mv.version) and model.defaults.k_meta == 1
    parsed = model.parse({"instances": [{"messages": MSG, "responses": ["4", "5"], "k": 4, "k_meta": 2}]})
    out = asyncio.run(model.predict(parsed))
    pred = out["predictions"][0]
    assert out["model_version"] == str(mv.version)
    assert len(pred["meta_scores"]) == 4 and len(pred["kept"]) == 2
    # MetaRM@k: the kept samples are the two the meta RM rated highest.
    top = sorted(range(4), key=lambda i: (-pred["meta_scores"][i], i))[:2]
    assert pred["kept"] == sorted(top)
    model.stop()
    assert not model.ready
