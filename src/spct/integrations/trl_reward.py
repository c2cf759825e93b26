"""A TRL ``reward_funcs`` entry: ``GRPOTrainer(..., reward_funcs=[SpctReward(url=...)])``.

TRL calls reward functions with ``prompts``, ``completions`` and the dataset's
other columns as keyword arguments; an instance with an ``async __call__`` is run
on TRL's event loop, concurrently with the other async reward functions
(TRL >= 1.x). Rewards are mean GRM scores (1..10); see
:mod:`spct.integrations.rewards` for grouping and failures. When TRL passes
``log_metric``, the share of completions no sample could score is logged as
``spct/unscored``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from spct.integrations.judges import Judge, LocalJudge, ServerJudge, run_sync
from spct.integrations.rewards import RewardSettings, score


class SpctReward:
    """Judge with a served spct (``url``) or a local GRM (``engine``: a spec or a loaded engine)."""

    def __init__(self, url: str | None = None, *, engine: Any = None, judge: Judge | None = None, token: str | None = None,
                 settings: RewardSettings | None = None, name: str = "spct", **judge_kw: Any):
        if sum(x is not None for x in (url, engine, judge)) != 1:
            raise ValueError("give exactly one of url (a served spct), engine (a local GRM) or judge")
        self.judge: Judge = judge or (ServerJudge(url, token=token, **judge_kw) if url else LocalJudge(engine, **judge_kw))
        self.settings = settings or RewardSettings()
        self.__name__ = name  # TRL names the reward column and metrics after it
        self.calls = 0

    async def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        # A fresh seed per call: the same prompt judged at step 1 and step 2 gets fresh samples.
        settings = replace(self.settings, seed=self.settings.seed + self.calls)
        self.calls += 1
        rewards, records = await score(self.judge, prompts, completions, settings)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and records:
            unscored = sum(1 for r in records if r.get("used") == 0) / len(records)
            log_metric("spct/unscored", unscored)
        return rewards

    def reward(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        """The same, from synchronous code."""
        return run_sync(self(prompts, completions, **kwargs))
