"""The canonical data types every part of spct speaks.

An :class:`Example` is one judging task: a conversation, one or more candidate
responses, and the ground truth about them. Every loader produces it, curation
writes it to parquet, training and evaluation read it, serving builds it from a
request.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str


class Example(BaseModel):
    """One preference item.

    ``best`` is the index of the ground-truth best response. Sources that rank
    all responses also fill ``ranking`` (response indices, best first); sources
    with per-response labels (e.g. single-response ratings) fill ``labels``.
    ``meta`` keeps source-specific tags that a benchmark's own scoring needs
    (RM-Bench styles, JudgeBench pair ids and order, RMB scenario, ...).

    A response may be empty or whitespace: benchmarks hold such answers (the
    full RMB release has two) and a judge should rank them last, so they are
    items to judge, not broken records.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    category: str = "default"
    messages: list[Message] = Field(min_length=1)
    responses: list[str] = Field(min_length=1)
    best: int | None = None
    ranking: list[int] | None = None
    labels: list[float] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, v: list[Message]) -> list[Message]:
        if v[-1].role != "user":
            raise ValueError("the conversation must end with a user turn (the responses answer it)")
        return v

    @model_validator(mode="after")
    def _labels_fit(self) -> "Example":
        n = len(self.responses)
        if self.best is not None and not 0 <= self.best < n:
            raise ValueError(f"best={self.best} is out of range for {n} responses")
        if self.ranking is not None and sorted(self.ranking) != list(range(n)):
            raise ValueError(f"ranking {self.ranking} is not a permutation of 0..{n - 1}")
        if self.ranking is not None and self.best is not None and self.ranking[0] != self.best:
            raise ValueError("ranking[0] must equal best")
        if self.labels is not None and len(self.labels) != n:
            raise ValueError(f"{len(self.labels)} labels for {n} responses")
        if self.best is None and self.labels is None:
            raise ValueError("an example needs a best index or per-response labels")
        return self

    @property
    def n(self) -> int:
        return len(self.responses)

    @property
    def prompt_text(self) -> str:
        """The conversation flattened, for hashing, dedup and length filters."""
        return "\n".join(f"{m.role}: {m.content}" for m in self.messages)

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def user(content: str) -> Message:
    return Message(role="user", content=content)
