"""spct as the reward in other stacks: TRL, verl, OpenRLHF and MLflow.

Each adapter judges through a :class:`~spct.integrations.judges.Judge`: a served
spct over HTTP (:class:`ServerJudge`, async, bounded concurrency, retries, bearer
token) or a GRM in this process (:class:`LocalJudge`). See docs/integrations.md.

- :class:`spct.integrations.trl_reward.SpctReward`: an async ``reward_funcs`` callable for TRL's trainers.
- :func:`spct.integrations.verl_reward.compute_score`: verl's ``custom_reward_function``.
- ``/get_reward`` on ``spct serve`` (:mod:`spct.integrations.openrlhf`): OpenRLHF's ``--remote_rm_url``.
- :func:`spct.integrations.mlflow_scorer.spct_scorer`: an MLflow GenAI scorer, critique as rationale.
"""

from spct.integrations.judges import Judge, JudgeError, LocalJudge, ServerJudge
from spct.integrations.rewards import RewardSettings, score

__all__ = ["Judge", "JudgeError", "LocalJudge", "RewardSettings", "ServerJudge", "score"]
