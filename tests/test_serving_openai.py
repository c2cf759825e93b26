"""spct's OpenAI-compatible routes, bearer-token auth, loopback binding and 413 delivery,
against a real ``spct serve`` of the tiny model on 127.0.0.1; and the OpenAI engine
(``open_engine("openai:URL")``) judging through that server exactly as the local engine does."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_fixture import NAME, TOKEN, Server, make_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("openai"))


@pytest.fixture(scope="module")
def server(bundle: Path) -> Iterator[Server]:
    srv = Server(bundle, bundle.parent / "server.log")
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


def post(server: Server, path: str, body: dict, **kw) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers, timeout=120, **kw)


def test_binds_loopback_with_auth_and_never_logs_the_token(server: Server) -> None:
    log = server.log()
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in log
    assert "bearer-token authentication" in log
    assert TOKEN not in log


GUARDED = [
    ("POST", f"/v1/models/{NAME}:predict", {"instances": [{"prompt": "q", "responses": ["a"]}]}),
    ("POST", f"/v2/models/{NAME}/infer", {"inputs": []}),
    ("POST", "/v1/completions", {"prompt": "x"}),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ("POST", "/get_reward", {"query": ["a b"], "prompts": ["a"]}),
    ("GET", "/v1/models", None),
    ("GET", f"/v2/models/{NAME}", None),
]


@pytest.mark.parametrize("method, path, body", GUARDED, ids=[p for _, p, _ in GUARDED])
def test_every_serving_route_needs_the_token(server: Server, method: str, path: str, body: dict | None) -> None:
    for headers, status, hint in [
        ({}, 401, "missing"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, 401, "Bearer <token>"),
        ({"authorization": "Bearer " + "x" * 26}, 403, "not accepted"),
    ]:
        r = httpx.request(method, server.url + path, json=body, headers=headers, timeout=30)
        assert r.status_code == status, (headers, r.text)
        err = r.json()
        assert err["field"] == "authorization" and hint in json.dumps(err), err
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.request(method, server.url + path, json=body, headers=server.headers, timeout=120)
    assert r.status_code not in (401, 403), r.text


def test_probes_and_metrics_stay_open(server: Server) -> None:
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{NAME}/ready", f"/v1/models/{NAME}", "/metrics"):
        assert httpx.get(server.url + path, timeout=30).status_code == 200, path


# -- the OpenAI engine through spct's own server -------------------------------------------------


@pytest.mark.parametrize("temperature", [0.0, 0.7], ids=["greedy", "sampled"])
def test_openai_engine_gives_the_local_engines_verdicts(server: Server, bundle: Path, temperature: float) -> None:
    from spct.engine import Engine, SamplingParams, open_engine
    from spct.grm.judge import JudgeItem, judge
    from spct.types import Message

    local = Engine.load(str(bundle), device="cpu")
    remote = open_engine(f"openai:{server.url}/v1", tokenizer=str(bundle), api_key=TOKEN)
    items = [JudgeItem([Message(role="user", content=f"What is {i} + {i}?")], [str(2 * i), str(2 * i + 1), "no idea"], k=4)
             for i in range(3)]
    # The single-response item's 4 prompts are identical: spct seeds the request as a whole, so nothing is merged.
    items.append(JudgeItem([Message(role="user", content="Name a colour.")], ["blue"], k=4))
    params = SamplingParams(temperature=temperature, max_new_tokens=12, seed=5)
    a, b = judge(local, items, params), judge(remote, items, params)
    for x, y in zip(a, b):
        assert [s.text for s in x.samples] == [s.text for s in y.samples]
        assert [s.completion_ids for s in x.samples] == [s.completion_ids for s in y.samples]
        assert [s.prompt_tokens for s in x.samples] == [s.prompt_tokens for s in y.samples]
        assert x.verdict == y.verdict
    assert remote.model == NAME and remote.merge_duplicates is False
    assert remote.usage.requests == 1 and remote.usage.completion_tokens == sum(s.completion_tokens for j in b for s in j.samples)
    if temperature:
        assert len({s.text for s in b[-1].samples}) > 1  # identical prompts still got different samples


def test_openai_engine_reports_refusals(server: Server, bundle: Path) -> None:
    from spct.engine import SamplingParams
    from spct.engine.openai import EngineError, OpenAIEngine

    eng = OpenAIEngine(server.url, tokenizer=str(bundle), api_key="y" * 20, retries=0)
    with pytest.raises(EngineError, match="403"):
        eng.generate(["hello"], SamplingParams(max_new_tokens=4))


def test_openai_engine_merges_duplicates_for_per_prompt_seeding_servers(server: Server, bundle: Path) -> None:
    """The path taken against vLLM-like servers: identical prompts of a call become one prompt with a
    larger n, and every caller still gets its own samples, in order."""
    from spct.engine import SamplingParams
    from spct.engine.openai import OpenAIEngine

    eng = OpenAIEngine(server.url, tokenizer=str(bundle), api_key=TOKEN, model=NAME, merge_duplicates=True)
    prompts = ["Hello there", "Once upon a time", "Hello there", "Hello there", "Why"]
    out = eng.generate(prompts, SamplingParams(temperature=1.0, max_new_tokens=6, seed=2), n=2)
    assert [len(row) for row in out] == [2] * 5
    hello = [g.text for i in (0, 2, 3) for g in out[i]]
    assert len(set(hello)) > 1  # the six samples of the repeated prompt are not one sample copied
    # 3 distinct prompts: "Hello there" sent once with n=6, the others with n=2 (one request per multiplicity)
    assert eng.usage.requests == 2 and eng.usage.completion_tokens == sum(g.completion_tokens for row in out for g in row)


def test_openai_engine_retries_then_reports_an_unreachable_server(bundle: Path) -> None:
    from serving_fixture import free_port
    from spct.engine import SamplingParams
    from spct.engine.openai import EngineError, OpenAIEngine

    eng = OpenAIEngine(f"http://127.0.0.1:{free_port()}", tokenizer=str(bundle), model=NAME, merge_duplicates=False,
                       retries=2, backoff_s=0.01)
    with pytest.raises(EngineError, match="ConnectError after 3 tries"):
        eng.generate(["hi"], SamplingParams(max_new_tokens=2))
    assert eng.usage.retries == 2


# -- the wire format -------------------------------------------------------------------------------


def test_completions(server: Server) -> None:
    r = post(server, "/v1/completions", {"model": NAME, "prompt": ["Hello", "Once upon"], "n": 2, "max_tokens": 6,
                                         "temperature": 0.8, "seed": 11, "return_token_ids": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "text_completion" and out["model"] == NAME
    assert [c["index"] for c in out["choices"]] == [0, 1, 2, 3]
    for c in out["choices"]:
        assert isinstance(c["text"], str) and c["finish_reason"] in ("stop", "length") and 1 <= len(c["token_ids"]) <= 6
    u = out["usage"]
    assert u["completion_tokens"] == sum(len(c["token_ids"]) for c in out["choices"])
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["prompt_tokens"] > 0
    again = post(server, "/v1/completions", {"model": NAME, "prompt": ["Hello", "Once upon"], "n": 2, "max_tokens": 6,
                                             "temperature": 0.8, "seed": 11, "return_token_ids": True}).json()
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in out["choices"]]


def test_a_seeded_request_is_reproducible_while_others_share_the_server(server: Server) -> None:
    body = {"prompt": "The weather today", "max_tokens": 8, "temperature": 1.0, "seed": 1234}
    alone = post(server, "/v1/completions", body).json()["choices"][0]["text"]
    texts: list[str] = []

    def noise(i: int) -> None:
        post(server, "/v1/completions", {"prompt": f"Noise {i}", "max_tokens": 8, "temperature": 1.0})

    threads = [threading.Thread(target=noise, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for _ in range(3):
        texts.append(post(server, "/v1/completions", body).json()["choices"][0]["text"])
    for t in threads:
        t.join()
    assert texts == [alone] * 3


def test_stop_strings_cut_the_text(server: Server) -> None:
    full = post(server, "/v1/completions", {"prompt": "abc", "max_tokens": 8, "temperature": 0}).json()["choices"][0]["text"]
    assert len(full) > 2
    stop = full[len(full) // 2 :][:2]
    cut = post(server, "/v1/completions", {"prompt": "abc", "max_tokens": 8, "temperature": 0, "stop": [stop]}).json()
    assert cut["choices"][0]["text"] == full[: full.index(stop)] and cut["choices"][0]["finish_reason"] == "stop"


def test_chat_and_streaming(server: Server) -> None:
    body = {"model": NAME, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
            "max_tokens": 6, "temperature": 0}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "chat.completion"
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and isinstance(msg["content"], str)
    with httpx.stream("POST", server.url + "/v1/chat/completions", headers=server.headers, timeout=120,
                      json={**body, "stream": True, "stream_options": {"include_usage": True}}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in s.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(ln[len("data: "):]) for ln in lines[:-1]]
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == events[0]["id"] for e in events)
    text = "".join(c["delta"].get("content", "") for e in events for c in e["choices"])
    assert text == msg["content"]  # greedy: the stream carries the same reply
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] >= 1


def test_chat_judge_extension(server: Server) -> None:
    body = {"model": NAME, "messages": [{"role": "user", "content": "What is 2 + 2?"}], "seed": 3,
            "spct": {"responses": ["4", "5"], "k": 3, "return_critiques": True}}
    r = post(server, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    out = r.json()
    v = out["spct"]
    assert len(out["choices"]) == 3 and v["k"] == 3 and len(v["scores"]) == 2
    assert [c["message"]["content"] for c in out["choices"]] == v["critiques"]
    assert v["used"] + v["failed"] == 3 and v["best"] in v["tied"]
    # the same verdict as the V1 route for the same request
    v1 = post(server, f"/v1/models/{NAME}:predict", {"instances": [
        {"messages": body["messages"], "responses": ["4", "5"], "k": 3, "seed": 3, "return_critiques": True}]}).json()
    assert v1["predictions"][0]["scores"] == v["scores"] and v1["predictions"][0]["best"] == v["best"]


@pytest.mark.parametrize("path, body, status, field", [
    ("/v1/completions", {"model": "gpt-4", "prompt": "x"}, 404, "model"),
    ("/v1/completions", {"prompt": "x", "logprobs": 5}, 400, "logprobs"),
    ("/v1/completions", {"prompt": "x", "n": 0}, 400, "n"),
    ("/v1/completions", {"prompt": [1, 2, 3]}, 400, "prompt[0]"),
    ("/v1/completions", {"max_tokens": 3}, 400, "prompt"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 10**6}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "word " * 5000}, 413, "prompt"),
    ("/v1/completions", {"prompt": "x", "shoe": 1}, 400, "shoe"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "bot", "content": "x"}]}, 400, "messages[0].role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "spct": {"k": 2}}, 400, "spct.responses"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "spct": {"responses": ["a"], "k_meta": 1}},
     400, "spct.k_meta"),
    ("/get_reward", {"query": ["ab"], "prompts": ["zz"]}, 400, "query[0]"),
    ("/get_reward", {"query": ["ab"]}, 400, "prompts"),
])
def test_bad_requests_name_the_field(server: Server, path: str, body: dict, status: int, field: str) -> None:
    r = post(server, path, body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field
    if path.startswith("/v1/"):  # OpenAI clients read error.message
        assert err["error"]["param"] == field and field in err["error"]["message"]


# -- 413 delivered, never a reset --------------------------------------------------------------------


def _chunks(data: bytes, size: int = 65_536) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_oversized_and_refused_bodies_get_their_answer_not_a_reset(server: Server) -> None:
    """A bounded fuzz of bodies the server refuses before using them: declared or chunked bodies
    over 1 MB, wrong content types and missing tokens with large bodies, on keep-alive and fresh
    connections. Every one must get its 4xx; the keep-alive connection must stay usable."""
    rng = random.Random(0)
    routes = [f"/v1/models/{NAME}:predict", f"/v2/models/{NAME}/infer", "/v1/completions", "/v1/chat/completions", "/get_reward"]
    stats = {"sent": 0, "connection_failures": 0, "5xx": 0, "wrong": 0}
    expected = {"big": 413, "ctype": 415, "auth": 401}
    with httpx.Client(timeout=60) as keep:
        for i in range(90):
            kind = rng.choice(["big", "ctype", "auth"])
            size = rng.choice([1_000_001, 1_500_000, 3_000_000]) if kind == "big" else rng.choice([100_000, 700_000, 2_000_000])
            data = b'{"instances": [' + b"x" * size
            headers = {"content-type": "text/plain" if kind == "ctype" else "application/json"}
            if kind != "auth":
                headers.update(server.headers)
            content = _chunks(data) if rng.random() < 0.5 else data
            client = keep if i % 3 else httpx.Client(timeout=60)
            stats["sent"] += 1
            try:
                r = client.post(server.url + rng.choice(routes), content=content, headers=headers)
            except httpx.TransportError:
                stats["connection_failures"] += 1
                continue
            finally:
                if client is not keep:
                    client.close()
            stats["5xx"] += r.status_code >= 500
            stats["wrong"] += r.status_code != expected[kind]
            # the same keep-alive connection still answers a normal request
            if i % 10 == 0:
                ok = keep.get(f"{server.url}/v2/models/{NAME}/ready")
                assert ok.status_code == 200
    print("413 fuzz:", stats)
    assert stats == {"sent": 90, "connection_failures": 0, "5xx": 0, "wrong": 0}


# -- the predictor as a thin voting layer over an engine server ----------------------------------------


def test_predictor_over_an_openai_engine_answers_like_the_engine_server(server: Server, bundle: Path) -> None:
    """``spct serve --engine openai:URL`` (what the chart's vLLM mode runs): generation on the
    other server, rendering/parsing/voting here. Greedy: the same verdicts and critiques."""
    layer = Server(bundle, bundle.parent / "layer.log", "--engine", f"openai:{server.url}/v1")
    try:
        layer.wait_ready()
        body = {"instances": [{"prompt": "What is 2 + 2?", "responses": ["4", "5"], "k": 2, "temperature": 0,
                               "return_critiques": True},
                              {"prompt": "Name a colour.", "responses": ["blue", "seven", "red"], "k": 3, "temperature": 0,
                               "seed": 4, "return_critiques": True}]}
        a = post(server, f"/v1/models/{NAME}:predict", body).json()["predictions"]
        b = post(layer, f"/v1/models/{NAME}:predict", body).json()["predictions"]
        for x, y in zip(a, b):
            for key in ("scores", "best", "tied", "sample_scores", "critiques", "generated_tokens", "prompt_tokens"):
                assert x[key] == y[key], key
    finally:
        layer.stop()


# -- a bounded fuzz of the OpenAI and /get_reward bodies ---------------------------------------------

JUNK = [None, True, -1, 0, 33, 2**70, 1.5, "", "x" * 20_000, [], {}, [1, "a"], {"a": None}, "\u202e\x00", "\ud800"]


def _mutants(n: int, seed: int = 1) -> Iterator[tuple[str, dict | list | str]]:
    rng = random.Random(seed)
    bases = [
        ("/v1/completions", {"model": NAME, "prompt": ["Hi", "Yo"], "max_tokens": 2, "n": 1, "temperature": 0.5, "seed": 1,
                             "stop": ["."], "stream": False}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": True,
                                  "stream_options": {"include_usage": True}}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "2+2?"}], "spct": {"responses": ["4", "5"], "k": 1}}),
        ("/get_reward", {"query": ["q a", "q b"], "prompts": ["q", "q"], "k": 1}),
    ]
    for _ in range(n):
        route, base = rng.choice(bases)
        body = json.loads(json.dumps(base))
        action = rng.random()
        if action < 0.5:
            body[rng.choice([*body, "bogus", "logprobs", "top_k", "max_completion_tokens", "min_tokens"])] = rng.choice(JUNK)
        elif action < 0.7:
            body.pop(rng.choice(sorted(body)))
        elif action < 0.85 and "spct" in body:
            body["spct"][rng.choice(["responses", "k", "k_meta", "return_critiques", "x"])] = rng.choice(JUNK)
        elif action < 0.95 and "messages" in body:
            body["messages"] = rng.choice([[{"role": "user"}], [{"role": "user", "content": [{"type": "image"}]}],
                                           [{"role": "assistant", "content": "a"}], "hi", [rng.choice(JUNK)]])
        else:
            body = rng.choice(JUNK)
        yield route, body


def test_fuzz_openai_and_reward_bodies(server: Server) -> None:
    stats: dict[str, int] = {}
    with httpx.Client(timeout=120, headers=server.headers) as h:
        for route, body in _mutants(150):
            try:
                raw = json.dumps(body).encode()
            except (TypeError, ValueError, UnicodeEncodeError):
                continue
            r = h.post(server.url + route, content=raw, headers={"content-type": "application/json"})
            stats[str(r.status_code)] = stats.get(str(r.status_code), 0) + 1
            assert r.status_code < 500, r.text[:300]
            if r.status_code >= 400:
                assert r.json()["field"], r.text[:300]
    print("openai fuzz:", stats)
    assert sum(stats.values()) >= 120 and stats.get("200", 0) > 0 and any(c.startswith("4") for c in stats)
