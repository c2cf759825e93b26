"""One judging path: the same request and seed give the same shuffles, samples and verdict through
``spct serve`` (a real server over HTTP), ``spct judge``, ``spct eval``, and ``spct eval --engine
openai:URL`` generating on that server (the tiny model)."""

import json
import os

import httpx
import pytest
from serving_fixture import NAME, Server, make_bundle
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.cli import app
from spct.grm.judge import JudgeItem, content_key, judge, rotations
from spct.types import user

runner = CliRunner()
PROMPT = "Write 'rocket garden' in uppercase."
RESPONSES = ['"ROCKET GARDEN"', '"Rocket Garden"']
K, SEED, MAX_NEW = 4, 3, 24


def _eval(bundle, data, out, *extra):
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--model", str(bundle), "--data", str(data), "--k", str(K),
                              "--seed", str(SEED), "--temperature", "0.5", "--max-new-tokens", str(MAX_NEW),
                              "--no-progress", "--out", str(out), *extra])  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads((out / "report.json").read_text()), [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]


def test_serve_judge_eval_and_the_openai_engine_agree_sample_for_sample(tmp_path):
    bundle = make_bundle(tmp_path, k=K, max_new_tokens=MAX_NEW)
    # spct judge
    res = runner.invoke(app, ["judge", "--model", str(bundle), "--prompt", PROMPT, "--response", RESPONSES[0],
                              "--response", RESPONSES[1], "--k", str(K), "--seed", str(SEED), "--temperature", "0.5",
                              "--max-new-tokens", str(MAX_NEW), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    judged = json.loads(res.stdout)  # stderr carries the loading progress bar
    assert len({tuple(s["perm"]) for s in judged["samples"]}) > 1  # the samples really are shuffled

    # spct eval, the same item as a one-line dataset
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "one", "source": "mine", "messages": [{"role": "user", "content": PROMPT}],
                                "responses": RESPONSES, "best": 0}) + "\n")  # fmt: skip
    local_report, local = _eval(bundle, data, tmp_path / "local")
    sampled = [r for r in local if r["mode"] == "sample"]

    server = Server(bundle, tmp_path / "server.log", token=None)
    try:
        server.wait_ready()
        # spct serve, over HTTP
        body = {"instances": [{"messages": [{"role": "user", "content": PROMPT}], "responses": RESPONSES, "k": K,
                               "seed": SEED, "temperature": 0.5, "return_critiques": True}]}  # fmt: skip
        r = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json=body, timeout=120)
        assert r.status_code == 200, r.text
        served = r.json()["predictions"][0]
        # spct eval with generation on the server (greedy in both orders too)
        remote_report, remote = _eval(bundle, data, tmp_path / "remote", "--engine", f"openai:{server.url}/v1")
    finally:
        server.stop()

    assert [s["perm"] for s in judged["samples"]] == [e["perm"] for e in sampled]
    assert [s["text"] for s in judged["samples"]] == [e["text"] for e in sampled]
    assert [s["scores"] for s in judged["samples"]] == [e["scores"] for e in sampled] == served["sample_scores"]
    texts = [s["critique"] if "critique" in s else s["text"] for s in judged["samples"]]
    assert texts == served["critiques"]
    assert judged["totals"] == served["scores"] and judged["best"] == served["best"] and judged["tied"] == served["tied"]

    keep = ("mode", "sample", "perm", "text", "scores", "completion_tokens")
    assert [{k: x[k] for k in keep} for x in remote] == [{k: x[k] for k in keep} for x in local]
    a, b = local_report["datasets"]["one"], remote_report["datasets"]["one"]
    assert {c: a[c] for c in ("greedy", "voting@4")} == {c: b[c] for c in ("greedy", "voting@4")}
    assert remote_report["model"].endswith(f"via openai:{server.url}")


def test_every_consumer_keys_samples_by_content():
    # The key that seeds shuffles and tie-breaks: the same for the same content, whatever the caller.
    a = JudgeItem([user(PROMPT)], RESPONSES, k=K)
    assert a.key == content_key([user(PROMPT)], RESPONSES)
    assert a.order(2, SEED) == JudgeItem([user(PROMPT)], list(RESPONSES), k=1).order(2, SEED)
    assert JudgeItem([user(PROMPT)], RESPONSES, orders=rotations(2)).k == 2
    with pytest.raises(ValueError, match="permutations"):
        JudgeItem([user(PROMPT)], RESPONSES, orders=((0, 0),))


def test_judge_refuses_metarm_items_without_a_meta_rm():
    from spct.engine import Engine, SamplingParams

    with pytest.raises(ValueError, match="no meta RM"):
        judge(Engine.load("tiny"), [JudgeItem([user(PROMPT)], RESPONSES, k=2, k_meta=1)], SamplingParams())


def test_a_bad_engine_is_one_line(tmp_path):
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--engine", "vllm:x", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--engine 'vllm:x': expected local or openai:URL" in res.output


def test_requests_with_their_own_seeds_share_one_call_and_keep_their_shuffles_and_tie_breaks():
    from spct.engine import Engine, SamplingParams

    engine = Engine.load("tiny")
    a = JudgeItem([user(PROMPT)], RESPONSES, k=3, seed=11)
    b = JudgeItem([user("Reverse 'abc'.")], ['"cba"', '"abc"'], k=3, seed=12)
    together = judge(engine, [a, b], SamplingParams(max_new_tokens=4, seed=11))
    alone_b = judge(engine, [b], SamplingParams(max_new_tokens=4, seed=12))[0]
    assert [s.perm for s in together[0].samples] == [a.order(j, 0) for j in range(3)]
    assert [s.perm for s in together[1].samples] == [s.perm for s in alone_b.samples]  # b's own seed, not the call's
    assert together[1].verdict.best == alone_b.verdict.best  # tie-break from b's seed
