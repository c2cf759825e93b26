"""OpenRLHF's remote reward model protocol, served by ``spct serve`` at ``POST /get_reward``.

OpenRLHF (``--remote_rm_url http://host:port/get_reward``) sends
``{"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [...]}``
and reads ``rewards`` (newer versions also ``scores`` and ``extra_logs``). spct
needs the prompt and the response apart: ``query[i]`` must start with
``prompts[i]``, the rest is the response. Queries that share a prompt are judged
together, as in :mod:`spct.integrations.rewards`. Unlike OpenRLHF's own
``serve_rm`` (no authentication, binds 0.0.0.0), the route sits behind the
server's bearer token and loopback default; pass the token in OpenRLHF with a
custom ``remote_rm_fn`` or a proxy that adds the header.

Options ride along as top-level fields: ``k``, ``seed``, ``temperature``, ``failed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spct.integrations.rewards import Group, RewardSettings, mean_scores, plan
from spct.serving.protocol import Defaults, JudgeRequest, JudgeResult, Limits, RequestError, _float, _int, _obj, parse_v1

FIELDS = ("query", "prompts", "labels", "k", "seed", "temperature", "failed", "templates", "stop_reason", "finish_reason",
          "metadata", "use_model_reward")
MAX_QUERIES = 512


@dataclass
class RewardGroup:
    group: Group
    request: JudgeRequest


@dataclass
class RewardPlan:
    groups: list[RewardGroup]
    blank: list[int]
    n: int
    failed: float | None
    blank_reward: float


def parse_reward_request(body: Any, limits: Limits = Limits(), defaults: Defaults = Defaults()) -> RewardPlan:
    body = _obj(body, "body", FIELDS)
    for key in ("query", "prompts"):
        v = body.get(key)
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            hint = " (spct needs the prompt apart from the response)" if key == "prompts" else ""
            raise RequestError(key, f"must be a non-empty array of strings{hint}")
    queries, prompts = body["query"], body["prompts"]
    if len(queries) > MAX_QUERIES:
        raise RequestError("query", f"at most {MAX_QUERIES} queries per request, got {len(queries)}", 413)
    if len(prompts) != len(queries):
        raise RequestError("prompts", f"must hold one prompt per query ({len(queries)}), got {len(prompts)}")
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts)):
        if not q.startswith(p):
            raise RequestError(f"query[{i}]", "must start with prompts[i]; the rest is the response judged")
        responses.append(q[len(p):])
    settings = RewardSettings(
        k=_int(body["k"], "k", 1, limits.max_k) if body.get("k") is not None else None,
        temperature=_float(body["temperature"], "temperature", 0.0, limits.max_temperature) if body.get("temperature") is not None else None,
        seed=_int(body["seed"], "seed", 0, 2**63 - 1) if body.get("seed") is not None else 0,
        failed=_float(body["failed"], "failed", -1e9, 1e9) if body.get("failed") is not None else 0.0,
        max_responses=limits.max_responses,
    )
    try:
        groups, blank = plan(prompts, responses, settings)
    except ValueError as e:
        raise RequestError("prompts", str(e)) from None
    from spct.integrations.rewards import instances

    insts = instances(groups, settings)
    out = []
    for g, inst in zip(groups, insts):
        where = f"query[{g.indices[0]}]"
        try:
            (req,) = parse_v1({"instances": [inst]}, limits, defaults)
        except RequestError as e:
            raise RequestError(where, e.message, e.status) from None
        out.append(RewardGroup(g, JudgeRequest(**{**req.__dict__, "field": where})))
    return RewardPlan(out, blank, len(queries), settings.failed, settings.blank)


def reward_body(plan_: RewardPlan, results: list[JudgeResult], ms: float) -> dict[str, Any]:
    rewards: list[float | None] = [None] * plan_.n
    unscored = [False] * plan_.n
    for i in plan_.blank:
        rewards[i] = plan_.blank_reward
    for g, res in zip(plan_.groups, results):
        pred = {"scores": res.scores, "used": res.used}
        for i, r in zip(g.group.indices, mean_scores(pred, plan_.failed)):
            rewards[i] = r
            unscored[i] = res.used == 0
    return {"rewards": rewards, "scores": rewards,
            "extra_logs": {"spct_unscored": [float(u) for u in unscored]}, "spct_ms": round(ms, 3)}
