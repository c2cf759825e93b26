"""One judging path: the same request and seed give the same shuffles, samples and verdict through
``spct serve`` (a real server over HTTP), ``spct judge`` and ``spct eval`` (the tiny model)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.cli import app
from spct.grm.judge import JudgeItem, content_key, judge, rotations
from spct.types import user

runner = CliRunner()
PROMPT = "Write 'rocket garden' in uppercase."
RESPONSES = ['"ROCKET GARDEN"', '"Rocket Garden"']
K, SEED, MAX_NEW = 4, 3, 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from spct.engine.models import tiny_dir

    out = tmp_path_factory.mktemp("path") / "bundle"
    shutil.copytree(tiny_dir(), out)
    (out / "spct.json").write_text(json.dumps({"name": "grm", "k": K, "temperature": 0.5, "max_new_tokens": MAX_NEW}))
    return out


def _serve(bundle, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spct.serving", "serve", "--model", str(bundle), "--port", str(port), "--name", "grm",
         "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/v2/models/grm/ready", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server not ready"
        time.sleep(0.3)


def test_serve_judge_and_eval_agree_sample_for_sample(bundle, tmp_path):
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
    out = tmp_path / "eval"
    res = runner.invoke(app, ["eval", "--profile", "tiny", "--model", str(bundle), "--data", str(data), "--k", str(K),
                              "--seed", str(SEED), "--temperature", "0.5", "--max-new-tokens", str(MAX_NEW),
                              "--no-greedy", "--no-progress", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    evaluated = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]

    # spct serve, over HTTP
    proc, url = _serve(bundle, tmp_path)
    try:
        body = {"instances": [{"messages": [{"role": "user", "content": PROMPT}], "responses": RESPONSES, "k": K,
                               "seed": SEED, "temperature": 0.5, "return_critiques": True}]}  # fmt: skip
        r = httpx.post(f"{url}/v1/models/grm:predict", json=body, timeout=120)
        assert r.status_code == 200, r.text
        served = r.json()["predictions"][0]
    finally:
        proc.terminate()
        proc.wait(60)

    assert [s["perm"] for s in judged["samples"]] == [e["perm"] for e in evaluated]
    assert [s["text"] for s in judged["samples"]] == [e["text"] for e in evaluated]
    assert [s["scores"] for s in judged["samples"]] == [e["scores"] for e in evaluated] == served["sample_scores"]
    texts = [s["critique"] if "critique" in s else s["text"] for s in judged["samples"]]
    assert texts == served["critiques"]
    assert judged["totals"] == served["scores"] and judged["best"] == served["best"] and judged["tied"] == served["tied"]


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
