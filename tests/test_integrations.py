"""spct as the reward of other stacks, each through a real ``spct serve`` on loopback:
TRL's reward_funcs callable (and a short GRPOTrainer run rewarded over HTTP), verl's
custom_reward_function, OpenRLHF's /get_reward, and an MLflow GenAI scorer.

The served GRM is the tiny model taught (in-test, cached) to answer every one-response
judge prompt with a critique ending in ``\\boxed{7}``; with two or more responses it
writes one score and the sample does not parse. So verdicts are real parses of real
generations, both outcomes included.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving_fixture import NAME, TOKEN, Server, fixed_verdict_model, make_bundle

GRM = dict(k=2, temperature=0.5, max_new_tokens=40)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("integrations"), fixed_verdict_model(), **GRM)


@pytest.fixture(scope="module")
def server(bundle: Path) -> Iterator[Server]:
    srv = Server(bundle, bundle.parent / "server.log")
    try:
        yield srv.wait_ready()
    finally:
        srv.stop()


def v1_mean(server: Server, question: str, responses: list[str], seed: int) -> list[float | None]:
    """The mean score per response as the V1 route answers for the same judge item."""
    r = httpx.post(f"{server.url}/v1/models/{NAME}:predict", headers=server.headers, timeout=120,
                   json={"instances": [{"messages": [{"role": "user", "content": question}], "responses": responses, "seed": seed}]})
    assert r.status_code == 200, r.text
    p = r.json()["predictions"][0]
    return [s / p["used"] if p["used"] else 0.0 for s in p["scores"]]


def predictions(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    m = re.search(r'^spct_requests_total\{code="200",protocol="v1"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


# -- TRL ---------------------------------------------------------------------------------------------


def test_trl_reward_func_scores_through_the_server(server: Server) -> None:
    from spct.integrations.trl_reward import SpctReward
    from trl.trainer.utils import get_callable_name, is_async_callable

    reward = SpctReward(server.url, token=TOKEN)
    assert is_async_callable(reward) and get_callable_name(reward) == "spct"
    prompts = ["Is the sky blue?", "Is the sky blue?", "Name a fruit.", "Name a fruit."]
    completions = ["Yes.", "No.", "Apple.", ""]
    # TRL groups are G completions of one prompt; judged together (2 responses: one score, no parse)
    rewards = asyncio.run(reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 4))
    assert rewards[3] == 1.0  # blank: not judged, the lowest score
    assert rewards[:2] == [0.0, 0.0]  # the 2-response item never parses: the failed value
    assert rewards[2] == 7.0  # "Name a fruit." alone with "Apple.": every sample says \boxed{7}
    assert rewards[2] == v1_mean(server, "Name a fruit.", ["Apple."], seed=0)[0]

    # the conversational form, one completion per prompt
    conv = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a fruit."}]]
    logged: list[tuple[str, float]] = []
    out = asyncio.run(reward(prompts=conv, completions=[[{"role": "assistant", "content": "Pear."}]],
                             log_metric=lambda k, v: logged.append((k, v))))
    assert out == [7.0] and logged == [("spct/unscored", 0.0)]


def test_trl_reward_func_local_matches_served(server: Server, bundle: Path) -> None:
    from spct.integrations.rewards import RewardSettings
    from spct.integrations.trl_reward import SpctReward

    prompts = ["Name a fruit.", "Say hi.", "Is 3 prime?"]
    completions = ["Apple.", "Hi!", "Yes."]
    settings = RewardSettings(seed=7)
    served = SpctReward(server.url, token=TOKEN, settings=settings).reward(prompts, completions)
    local = SpctReward(engine=str(bundle), settings=settings, device="cpu", **GRM).reward(prompts, completions)
    # voting here, generation on the server's OpenAI route (what a vLLM-served GRM looks like)
    over_engine = SpctReward(engine=f"openai:{server.url}", tokenizer=str(bundle), api_key=TOKEN, settings=settings,
                             **GRM).reward(prompts, completions)
    assert served == local == over_engine == [7.0, 7.0, 7.0]


@pytest.mark.timeout(600)
def test_trl_grpo_trainer_rewards_through_the_server(server: Server, tmp_path: Path) -> None:
    """Two GRPOTrainer steps of the tiny policy, the reward coming from spct over HTTP."""
    from datasets import Dataset
    from spct.engine.models import tiny_dir
    from spct.integrations.trl_reward import SpctReward
    from trl import GRPOConfig, GRPOTrainer

    before = predictions(server)
    data = Dataset.from_list([{"prompt": q} for q in ["Name a fruit.", "Say hi.", "Is 3 prime?", "Name a colour."]])
    cfg = GRPOConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=2,
        max_completion_length=6, learning_rate=1e-4, logging_steps=1, report_to=[], save_strategy="no",
        use_cpu=True, bf16=False, seed=0, dataloader_num_workers=0, gradient_checkpointing=False,
    )
    trainer = GRPOTrainer(model=str(tiny_dir()), reward_funcs=[SpctReward(server.url, token=TOKEN)], args=cfg,
                          train_dataset=data)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "rewards/spct/mean" in h]
    assert len(logs) == 2, trainer.state.log_history
    # 2 prompts x 2 completions per step: each prompt's pair judged together, one HTTP request per step
    assert predictions(server) - before >= 2
    assert all(0.0 <= h["rewards/spct/mean"] <= 10.0 for h in logs)


# -- verl ----------------------------------------------------------------------------------------------


def test_verl_compute_score(server: Server) -> None:
    from spct.integrations.verl_reward import compute_score, compute_score_batch

    kw = {"url": server.url, "token": TOKEN}
    s = compute_score("openai/gsm8k", "Apple.", "Apple", {"question": "Name a fruit.", "index": 0}, **kw)
    assert s == 7.0 == v1_mean(server, "Name a fruit.", ["Apple."], seed=0)[0]
    scores = compute_score_batch(["d"] * 3, ["Apple.", "Pear.", "Hi."], [None] * 3,
                                 [{"question": "Name a fruit."}, {"question": "Name a fruit."}, {"prompt": "Say hi."}], **kw)
    assert scores == [0.0, 0.0, 7.0]  # the two fruit answers judged together (no parse); "Say hi." alone
    with pytest.raises(ValueError, match="extra_info has no 'question'"):
        compute_score("d", "x", None, {"index": 1}, **kw)


# -- OpenRLHF ------------------------------------------------------------------------------------------


def test_openrlhf_get_reward(server: Server) -> None:
    prompt = "Name a fruit.\n"
    body = {"query": [prompt + "Apple.", "Q: say hi\nA: Hi!", "Q: say hi\nA: Hello", "Q: x\nA:"],
            "prompts": [prompt, "Q: say hi\nA:", "Q: say hi\nA:", "Q: x\nA:"], "labels": ["", "", "", ""]}
    r = httpx.post(f"{server.url}/get_reward", json=body, headers=server.headers, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rewards"] == out["scores"] == [7.0, 0.0, 0.0, 1.0]
    assert out["extra_logs"]["spct_unscored"] == [0.0, 1.0, 1.0, 0.0]
    assert httpx.post(f"{server.url}/get_reward", json=body, timeout=30).status_code == 401


# -- MLflow ----------------------------------------------------------------------------------------------


def test_mlflow_scorer_gives_score_and_critique(server: Server, mlflow_server: str) -> None:
    import mlflow
    from mlflow.entities import Feedback
    from spct.integrations.mlflow_scorer import spct_scorer

    scorer = spct_scorer(server.url, token=TOKEN, k=3)
    fb = scorer(inputs={"question": "Name a fruit."}, outputs="Apple.")
    assert isinstance(fb, Feedback) and fb.name == "spct"
    assert fb.value == 7.0 and fb.metadata["used"] == 3 and fb.metadata["sample_scores"] == [7, 7, 7]
    assert fb.rationale == "Principles:\n- Correctness (100%)\n\nfine."  # the principles, then the critique
    empty = scorer(inputs="Say hi.", outputs={"choices": [{"message": {"role": "assistant", "content": " "}}]})
    assert empty.value == 1.0 and "empty" in empty.rationale
    # a judge that cannot score (the untrained tiny model, in this process) says so instead of making a value up
    untrained = spct_scorer(engine="tiny", k=2, max_new_tokens=8, device="cpu")
    bad = untrained(inputs=[{"role": "user", "content": "Name a fruit."}], outputs={"response": "Apple."})
    assert bad.value is None and bad.error.error_code == "SPCT_UNSCORED" and bad.metadata["failed"] == 2

    # and through mlflow.genai.evaluate, tracked by the session's MLflow server
    # Restored exactly afterwards: set_tracking_uri also exports MLFLOW_TRACKING_URI, and a default
    # URI "restored" as an explicit one would steer every later test's MLflow (the local pipeline's).
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(mlflow_server)
    try:
        mlflow.set_experiment("spct-scorer-test")
        os.environ.setdefault("MLFLOW_GENAI_EVAL_MAX_WORKERS", "2")
        result = mlflow.genai.evaluate(
            data=[{"inputs": {"question": "Name a fruit."}, "outputs": "Apple."},
                  {"inputs": {"question": "Say hi."}, "outputs": "Hi!"}],
            scorers=[scorer],
        )
    finally:
        mlflow.set_tracking_uri(previous)
    assert result.metrics["spct/mean"] == 7.0
