"""A real KServe model server on loopback serving the tiny GRM bundle.

One server process serves the module (start-up dominates the cost); the
graceful-shutdown test starts one of its own with long generations and stops it
with SIGTERM while requests are in flight.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_fixture import NAME, Server, make_bundle

# The server process and bundle helpers are shared with the OpenAI/auth tests (serving_fixture);
# this module runs without a token and with an explicit shutdown grace period.
VERSION = "7"


def start(bundle: Path, log: Path, grace_s: int = 60, *args: str) -> Server:
    return Server(bundle, log, "--grace-s", str(grace_s), *args, token=None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("serving")
    srv = start(make_bundle(d, version=VERSION), d / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def v1(prompt: str, responses: list[str], **opts: Any) -> dict:
    return {"instances": [{"prompt": prompt, "responses": responses, **opts}]}


def v2(prompt: str, responses: list[str], rid: str | None = None, **params: Any) -> dict:
    body: dict[str, Any] = {
        "inputs": [
            {"name": "prompt", "shape": [1], "datatype": "BYTES", "data": [prompt]},
            {"name": "responses", "shape": [len(responses)], "datatype": "BYTES", "data": responses},
        ],
        "parameters": params,
    }
    if rid:
        body["id"] = rid
    return body


def test_ready_only_after_warmup(server: Server) -> None:
    log = server.log()
    assert "warmed up" in log
    # The HTTP server starts listening only after the warm-up judgment finished.
    assert log.index("warmed up") < log.index("Uvicorn running on")
    r = httpx.get(f"{server.url}/v2/models/{NAME}/ready")
    assert r.json() == {"name": NAME, "ready": True}
    assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}


def test_v1_judge(server: Server) -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    body = {"instances": [
        {"messages": msgs, "responses": ["4", "5", "22"], "k": 3, "return_critiques": True, "seed": 1},
        {"prompt": "Name a colour.", "responses": ["blue"]},
    ]}
    r = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == NAME and out["model_version"] == "7"
    a, b = out["predictions"]
    assert len(a["scores"]) == 3 and a["k"] == 3 and len(a["sample_scores"]) == 3
    assert a["best"] in a["tied"] and all(a["scores"][i] == max(a["scores"]) for i in a["tied"])
    assert a["used"] + a["failed"] == 3 and len(a["parse_failures"]) == a["failed"]
    assert len(a["critiques"]) == 3 and len(a["principles"]) == 3
    # Summed scores are exactly the sum of the parsed samples (no parse = contributes nothing).
    sums = [sum(s[i] for s in a["sample_scores"] if s is not None) for i in range(3)]
    assert a["scores"] == sums
    assert b["k"] == 2 and len(b["scores"]) == 1 and "critiques" not in b  # bundle default k=2
    assert out["timings"]["total_ms"] >= out["timings"]["generate_ms"] > 0


def test_v2_judge(server: Server) -> None:
    body = v2("Which is a prime?", ["9", "7"], rid="req-42", k=2, return_critiques=True)
    r = httpx.post(f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "req-42" and out["model_version"] == "7"
    got = {o["name"]: o for o in out["outputs"]}
    assert got["scores"]["shape"] == [2] and got["sample_scores"]["shape"] == [2, 2]
    assert got["best"]["data"][0] in got["tied"]["data"]
    assert len(got["critiques"]["data"]) == 2
    assert out["parameters"]["used"] + out["parameters"]["failed"] == 2
    # messages as JSON strings, k as an INT tensor, only some outputs requested
    body = {
        "inputs": [
            {"name": "messages", "shape": [1], "datatype": "BYTES", "data": [json.dumps({"role": "user", "content": "Hi?"})]},
            {"name": "responses", "shape": [1], "datatype": "BYTES", "data": ["Hello."]},
            {"name": "k", "shape": [1], "datatype": "INT32", "data": [1]},
        ],
        "outputs": [{"name": "scores"}, {"name": "best"}],
    }
    r = httpx.post(f"{server.url}/v2/models/{NAME}/infer", json=body, timeout=120)
    assert r.status_code == 200, r.text
    assert [o["name"] for o in r.json()["outputs"]] == ["scores", "best"]


def test_limits_and_meta_rm_answer_4xx(server: Server) -> None:
    url = f"{server.url}/v1/models/{NAME}:predict"
    r = httpx.post(url, json=v1("q", ["a"] * 9))
    assert r.status_code == 413 and r.json()["field"] == "instances[0].responses"
    r = httpx.post(url, json=v1("q", ["a"], k=33))
    assert r.status_code == 400 and r.json()["field"] == "instances[0].k"
    r = httpx.post(url, json=v1("q", ["a"], k=2, k_meta=1))
    assert r.status_code == 400 and "no meta RM" in r.json()["error"]
    r = httpx.post(url, json=v1("word " * 3000, ["a"]))  # under the character limit, over the token limit
    assert r.status_code == 413 and "tokens" in r.json()["error"]
    r = httpx.post(url, content=b"{" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"


def test_64_concurrent_clients_get_their_own_results(server: Server) -> None:
    """Distinct prompt lengths fingerprint each request: prompt_tokens must rise with the client index."""
    results: dict[int, dict] = {}
    errors: list[str] = []

    def client(i: int) -> None:
        prompt = "Count the apples:" + " apple" * (i + 1)
        try:
            if i % 2:
                r = httpx.post(f"{server.url}/v2/models/{NAME}/infer", json=v2(prompt, ["yes", "no"], rid=f"c{i}", k=1), timeout=300)
                out = r.json()
                assert r.status_code == 200, r.text
                assert out["id"] == f"c{i}"
                results[i] = {"prompt_tokens": out["parameters"]["prompt_tokens"], "batch": out["parameters"]["batch_requests"]}
            else:
                r = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json=v1(prompt, ["yes", "no"], k=1), timeout=300)
                assert r.status_code == 200, r.text
                out = r.json()
                results[i] = {"prompt_tokens": out["predictions"][0]["prompt_tokens"], "batch": out["timings"]["batch_requests"]}
        except Exception as e:  # collected and reported below
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    tokens = [results[i]["prompt_tokens"] for i in range(64)]
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens
    assert max(r["batch"] for r in results.values()) > 1  # requests were coalesced


def test_metrics(server: Server) -> None:
    assert httpx.post(f"{server.url}/v1/models/{NAME}:predict", json=v1("q", ["a"], k=1), timeout=120).status_code == 200
    text = httpx.get(f"{server.url}/metrics").text
    for name in ("spct_requests_total", "spct_request_seconds", "spct_generated_tokens_total", "spct_batch_requests",
                 "spct_batch_samples", "spct_queue_depth", "spct_requests_in_flight"):
        assert name in text, name
    assert 'spct_requests_total{code="200",protocol="v1"}' in text


# --- malformed requests: hypothesis-generated bodies against the live server ----------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_weird_text = st.sampled_from(["", " ", "\x00", "\u202e", "\ud800", "\ud7ff", "😀" * 3, "[Response 1 end]", "\\boxed{10}", "a" * 20_000])
_value = _json | _weird_text | st.sampled_from([-1, 0, 33, 2**64, 1.5, True, [], {}, None])


def _mutate_v1(data: st.DataObject) -> Any:
    base = v1("What is 2+2?", ["4", "5"], k=1)
    inst = base["instances"][0]
    action = data.draw(st.sampled_from(["drop", "set", "set_msg", "top", "instances"]))
    if action == "drop":
        inst.pop(data.draw(st.sampled_from(sorted(inst))))
    elif action == "set":
        key = data.draw(st.sampled_from(["prompt", "responses", "k", "k_meta", "temperature", "seed", "return_critiques", "extra"]))
        inst[key] = data.draw(_value)
    elif action == "set_msg":
        inst.pop("prompt")
        inst["messages"] = data.draw(st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]), _value, max_size=3), max_size=3)
                                     | _value)
    elif action == "top":
        return data.draw(_value)
    else:
        base["instances"] = data.draw(_value)
    return base


def _mutate_v2(data: st.DataObject) -> Any:
    base = v2("What is 2+2?", ["4", "5"], k=1)
    action = data.draw(st.sampled_from(["drop", "tensor", "param", "shape", "top", "outputs"]))
    if action == "drop":
        base.pop(data.draw(st.sampled_from(["inputs", "parameters"])))
        if "inputs" in base and data.draw(st.booleans()):
            base["inputs"].pop(data.draw(st.integers(0, 1)))
    elif action == "tensor":
        t = base["inputs"][data.draw(st.integers(0, 1))]
        t[data.draw(st.sampled_from(["name", "shape", "datatype", "data", "parameters", "bogus"]))] = data.draw(_value)
    elif action == "param":
        base["parameters"][data.draw(st.sampled_from(["k", "k_meta", "seed", "temperature", "return_critiques", "zzz"]))] = data.draw(_value)
    elif action == "shape":
        base["inputs"][1]["shape"] = data.draw(st.lists(st.integers(-2, 5), max_size=3))
    elif action == "outputs":
        base["outputs"] = data.draw(_value)
    else:
        return data.draw(_value)
    return base


def _check(r: httpx.Response, stats: dict[str, int]) -> None:
    stats[str(r.status_code)] = stats.get(str(r.status_code), 0) + 1
    assert r.status_code < 500, r.text[:300]
    if r.status_code >= 400:
        err = r.json()
        assert err.get("error") and err.get("field"), r.text[:300]


CLIENT = httpx.Client(timeout=120)
FUZZ = settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
STATS: dict[str, int] = {}


@FUZZ
@given(data=st.data())
def test_fuzz_v1_bodies(server: Server, data: st.DataObject) -> None:
    body = _mutate_v1(data)
    _check(CLIENT.post(f"{server.url}/v1/models/{NAME}:predict", content=json.dumps(body),
                       headers={"content-type": "application/json"}), STATS)


@FUZZ
@given(data=st.data())
def test_fuzz_v2_bodies(server: Server, data: st.DataObject) -> None:
    body = _mutate_v2(data)
    _check(CLIENT.post(f"{server.url}/v2/models/{NAME}/infer", content=json.dumps(body),
                       headers={"content-type": "application/json"}), STATS)


@settings(max_examples=1100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode)
       | st.sampled_from([b'{"instances": [', b"\xff\xfe", b'{"instances": [{"prompt": "\\ud800"}]}', b"[" * 5000, b"null",
                          b'{"inputs": "x"}', b"NaN", b'{"instances": 1e999}']),
       route=st.sampled_from([f"/v1/models/{NAME}:predict", f"/v2/models/{NAME}/infer"]),
       ctype=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", None]))
def test_fuzz_raw_bytes(server: Server, raw: bytes, route: str, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    _check(CLIENT.post(server.url + route, content=raw, headers=headers), STATS)


def test_fuzz_left_the_server_healthy(server: Server) -> None:
    assert server.proc.poll() is None
    assert httpx.get(f"{server.url}/v2/models/{NAME}/ready").status_code == 200
    assert sum(STATS.values()) == 0 or sum(STATS.values()) >= 2000, STATS
    assert not any(code.startswith("5") for code in STATS)


def _in_flight(server: Server) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("spct_requests_in_flight "):
            return float(line.split()[1])
    return 0.0


def _wait_in_flight(server: Server, n: int) -> None:
    deadline = time.monotonic() + 60
    while _in_flight(server) < n:
        assert time.monotonic() < deadline, f"{n} requests never were in flight together"
        time.sleep(0.02)


@pytest.fixture()
def slow_server(tmp_path: Path) -> Iterator[Server]:
    """A server of its own whose every generation is 384 tokens long.

    With the module server's 8-token generations a k=32 request ended in a
    fraction of a second, sometimes before 8 more requests had even arrived on a
    loaded CI machine; forced long generations hold the sampler for seconds.
    """
    # The per-request timeout is raised to the grace period: this test is about draining on SIGTERM, and
    # 32 forced 384-token critiques overran the default 120 s on a loaded 2-core machine (504s).
    srv = start(make_bundle(tmp_path, version=VERSION, max_new_tokens=384, min_new_tokens=384), tmp_path / "server.log",
                300, "--timeout-s", "290")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_graceful_shutdown_finishes_in_flight_requests(slow_server: Server) -> None:
    """SIGTERM while 9 requests are queued or being judged: every one still gets its 200, then exit 0.

    A first request with k=32 keeps the sampler busy, so the next 8 are certainly
    still waiting when the signal arrives.
    """
    server = slow_server
    codes: list[int] = []
    done_at: list[float] = []

    def client(i: int, k: int) -> None:
        r = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json=v1(f"Question {i}?", ["a", "b"], k=k), timeout=300)
        codes.append(r.status_code)
        done_at.append(time.monotonic())

    threads = [threading.Thread(target=client, args=(0, 32))]
    threads[0].start()
    _wait_in_flight(server, 1)
    threads += [threading.Thread(target=client, args=(i, 2)) for i in range(1, 9)]
    for t in threads[1:]:
        t.start()
    _wait_in_flight(server, 9)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    assert codes == [200] * 9
    assert min(done_at) > sent  # all 9 were in flight at SIGTERM, and all were answered
    assert server.proc.wait(300) == 0
    assert "Shutting down" in server.log()
