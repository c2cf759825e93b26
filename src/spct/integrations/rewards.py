"""From (prompt, completion) pairs to rewards: group, judge, average the votes.

An RL step samples several completions per prompt (TRL's ``num_generations``,
verl's ``rollout.n``). SPCT's GRM is pointwise over several responses, so the
completions of one prompt are judged together (up to ``max_responses`` per judge
item), each sample presenting them in its own shuffled order. A completion's
reward is its mean score over the samples that voted (1..10); when no sample
parsed, it is ``failed`` (``None`` tells TRL "no reward from this function").
An empty completion is not sent to the judge and gets ``blank`` (1.0, the
lowest score). A completion longer than the server's 16,000-character limit is
cut to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spct.integrations.judges import Judge

MAX_CHARS = 16_000


@dataclass(frozen=True)
class RewardSettings:
    k: int | None = None  # samples per judge item (None: the judge's default)
    k_meta: int | None = None  # MetaRM@k (a meta RM must be loaded)
    temperature: float | None = None
    seed: int = 0
    failed: float | None = 0.0
    blank: float = 1.0
    max_responses: int = 8
    group: bool = True  # judge a prompt's completions together


@dataclass
class Group:
    messages: list[dict[str, str]]
    indices: list[int] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)


def to_messages(prompt: Any) -> list[dict[str, str]]:
    """A TRL/verl prompt (text, or a list of chat messages) as V1 ``messages``, ending with a user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, dict) and "content" in prompt:
        prompt = [prompt]
    if isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) for m in prompt):
        msgs = [{"role": m.get("role", "user"), "content": _content(m.get("content", ""))} for m in prompt]
        # The judged conversation ends with the user turn the completion answers.
        while msgs and msgs[-1]["role"] != "user":
            msgs.pop()
        if msgs:
            return msgs
    raise ValueError("a prompt must be text or a list of {role, content} messages with a user turn")


def _content(c: Any) -> str:
    if isinstance(c, list):  # content parts
        return "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return str(c)


def completion_text(completion: Any) -> str:
    """A completion as text: TRL's conversational form is a list of assistant messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(completion_text(m) for m in completion)
    raise ValueError(f"a completion must be text or chat messages, got {type(completion).__name__}")


def plan(prompts: Sequence[Any], completions: Sequence[Any], settings: RewardSettings) -> tuple[list[Group], list[int]]:
    """Judge items (completions of one prompt, in chunks) and the indices of blank completions."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    groups: list[Group] = []
    open_: dict[str, Group] = {}
    blank: list[int] = []
    for i, (p, c) in enumerate(zip(prompts, completions)):
        text = completion_text(c)[:MAX_CHARS]
        if not text.strip():
            blank.append(i)
            continue
        messages = to_messages(p)
        key = hashlib.sha256(repr(messages).encode("utf-8", "surrogatepass")).hexdigest() if settings.group else str(i)
        g = open_.get(key)
        if g is None or len(g.responses) >= settings.max_responses:
            g = Group(messages)
            open_[key] = g
            groups.append(g)
        g.indices.append(i)
        g.responses.append(text)
    return groups, blank


def instances(groups: Sequence[Group], settings: RewardSettings) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        inst: dict[str, Any] = {"messages": g.messages, "responses": g.responses, "seed": settings.seed}
        for key in ("k", "k_meta", "temperature"):
            if getattr(settings, key) is not None:
                inst[key] = getattr(settings, key)
        out.append(inst)
    return out


def mean_scores(prediction: dict[str, Any], failed: float | None) -> list[float | None]:
    """Each response's mean score over the samples that voted."""
    used = prediction["used"]
    return [s / used if used else failed for s in prediction["scores"]]


async def score(judge: Judge, prompts: Sequence[Any], completions: Sequence[Any],
                settings: RewardSettings = RewardSettings()) -> tuple[list[float | None], list[dict[str, Any]]]:
    """Rewards in input order, and each completion's judge record (for logging)."""
    groups, blank = plan(prompts, completions, settings)
    preds = await judge.judge(instances(groups, settings)) if groups else []
    rewards: list[float | None] = [None] * len(prompts)
    records: list[dict[str, Any]] = [{} for _ in prompts]
    for i in blank:
        rewards[i] = settings.blank
        records[i] = {"blank": True}
    for g, pred in zip(groups, preds):
        for j, (i, r) in enumerate(zip(g.indices, mean_scores(pred, settings.failed))):
            rewards[i] = r
            records[i] = {"used": pred["used"], "failed": pred["failed"], "best": pred["best"] == j,
                          "critiques": pred.get("critiques")}
    return rewards, records
