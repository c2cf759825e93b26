"""verl's ``custom_reward_function``: point verl at this file and a function name.

    custom_reward_function:
      path: <site-packages>/spct/integrations/verl_reward.py
      name: compute_score            # or compute_score_batch with reward_model.reward_manager=batch
      reward_kwargs: {url: "http://spct-grm:8080", k: 4}

verl passes the decoded response (``solution_str``), the ``ground_truth`` and the
row's ``extra_info``; the question being answered is read from
``extra_info[prompt_key]`` (``question`` by default, as verl's example
preprocessing stores it, then ``prompt``). The bearer token comes from
``$SPCT_API_TOKEN`` unless ``token`` is given. ``ground_truth`` is not shown to
the GRM (it judges the response on its own principles); a rule-based score can
be added next to this one.
"""

from __future__ import annotations

from typing import Any

from spct.integrations.judges import ServerJudge, run_sync
from spct.integrations.rewards import RewardSettings, score

_JUDGES: dict[tuple, ServerJudge] = {}


def _judge(url: str | None, token: str | None, model: str) -> ServerJudge:
    import os

    url = url or os.environ.get("SPCT_URL")
    if not url:
        raise ValueError("spct reward: give reward_kwargs.url (or $SPCT_URL), e.g. http://spct-grm:8080")
    key = (url, token, model)
    if key not in _JUDGES:
        _JUDGES[key] = ServerJudge(url, token=token, model=model)
    return _JUDGES[key]


def _prompt(extra_info: Any, prompt_key: str) -> Any:
    info = extra_info or {}
    for key in (prompt_key, "prompt"):
        if isinstance(info, dict) and info.get(key):
            return info[key]
    raise ValueError(f"spct reward: extra_info has no {prompt_key!r} (or 'prompt'): store the question there when "
                     "preprocessing the data, or set reward_kwargs.prompt_key")


def _settings(k: int | None, temperature: float | None, seed: int, failed: float | None) -> RewardSettings:
    return RewardSettings(k=k, temperature=temperature, seed=seed, failed=failed)


def compute_score_batch(data_sources: list[str], solution_strs: list[str], ground_truths: list[Any],
                        extra_infos: list[Any], *, url: str | None = None, token: str | None = None,
                        model: str = "spct-grm", k: int | None = None, temperature: float | None = None, seed: int = 0,
                        failed: float | None = 0.0, prompt_key: str = "question", **_: Any) -> list[float]:
    """verl's batch reward manager: every response of the batch judged in one go, grouped by question."""
    prompts = [_prompt(e, prompt_key) for e in extra_infos]
    rewards, _records = run_sync(score(_judge(url, token, model), prompts, solution_strs,
                                       _settings(k, temperature, seed, failed)))
    return [float("nan") if r is None else r for r in rewards]


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **kwargs: Any) -> float:
    """verl's per-item reward manager (naive): one judge request per response."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], **kwargs)[0]
