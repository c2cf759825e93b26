"""The held-out guard: evaluation items must not be training items.

Items are compared by normalised content (Unicode NFKC, case-folded, whitespace
collapsed): an evaluation item overlaps when its conversation equals a training
item's, whatever the responses (the model has seen the question and, in
training, which answer was right), and the report names the kind of overlap
(same conversation; same conversation and responses). Ids, seeds and sources
play no part, so two loaders or two seeds of a generator that produce the same
item are caught.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spct.data.dedup import normalise
from spct.types import Example


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(normalise(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def prompt_key(ex: Example) -> str:
    return _digest(*(f"{m.role}: {m.content}" for m in ex.messages))


def content_key(ex: Example) -> str:
    """Conversation plus the responses as a set (their order is presentation, not content)."""
    return _digest(prompt_key(ex), *sorted(normalise(r) for r in ex.responses))


@dataclass(frozen=True)
class Overlap:
    dataset: str
    eval_id: str
    train_source: str
    train_id: str
    same_responses: bool

    def describe(self) -> str:
        what = "prompt and responses" if self.same_responses else "prompt"
        return f"{self.dataset}:{self.eval_id} has the same {what} as training item {self.train_id} ({self.train_source})"


class OverlapError(ValueError):
    """Evaluation items that are also training items; the message names them."""

    def __init__(self, overlaps: Sequence[Overlap], shown: int = 10) -> None:
        self.overlaps = list(overlaps)
        lines = [o.describe() for o in self.overlaps[:shown]]
        more = f"; and {len(self.overlaps) - shown} more" if len(self.overlaps) > shown else ""
        super().__init__(
            f"{len(self.overlaps)} evaluation items are not held out: " + "; ".join(lines) + more
            + " (use training and evaluation data that share no item, e.g. builtin:verifiable?split=train "
            "for training and ?split=heldout for evaluation; --allow-overlap evaluates anyway and says so in the report)"
        )


def find_overlaps(eval_sets: Mapping[str, Sequence[Example]], train_sets: Mapping[str, Sequence[Example]]) -> list[Overlap]:
    """Every evaluation item whose conversation is also a training item's (first training match named)."""
    by_prompt: dict[str, tuple[str, Example]] = {}
    contents: set[str] = set()
    for source, examples in train_sets.items():
        for ex in examples:
            by_prompt.setdefault(prompt_key(ex), (source, ex))
            contents.add(content_key(ex))
    out = []
    for name, examples in eval_sets.items():
        for ex in examples:
            hit = by_prompt.get(prompt_key(ex))
            if hit is not None:
                out.append(Overlap(name, ex.id, hit[0], hit[1].id, content_key(ex) in contents))
    return out


def check_heldout(
    eval_sets: Mapping[str, Sequence[Example]], train_sets: Mapping[str, Sequence[Example]], *, allow: bool = False
) -> dict[str, dict[str, object]]:
    """Raise :class:`OverlapError` on any overlap unless ``allow``; returns, per evaluation set,
    what the report records: the training sources checked and the overlapping item ids."""
    overlaps = find_overlaps(eval_sets, train_sets)
    if overlaps and not allow:
        raise OverlapError(overlaps)
    checked = sorted(train_sets)
    return {
        name: {
            "checked_against": checked,
            "training_items": sum(len(v) for v in train_sets.values()),
            "overlapping": sorted({o.eval_id for o in overlaps if o.dataset == name}),
            "allowed": allow,
        }
        for name in eval_sets
    }


TRAINING_SECTIONS = ("coldstart", "rft", "grpo", "metarm")


def training_specs(profile: object) -> list[str]:
    """The data every training stage of ``profile`` reads (the pipeline sets them to the curated split)."""
    specs: list[str] = []
    for section in TRAINING_SECTIONS:
        spec = getattr(getattr(profile, section), "data", None)
        if spec and spec not in specs:
            specs.append(spec)
    return specs


def load_training_sets(specs: Sequence[str]) -> dict[str, list[Example]]:
    """Training items by spec; a spec that cannot be read is an error naming it (never a silent pass)."""
    from spct.data import load

    out: dict[str, list[Example]] = {}
    for spec in specs:
        try:
            out[spec] = load(spec).examples
        except (ValueError, OSError) as e:
            raise ValueError(f"cannot read training data {spec!r} to check that evaluation items are held out: {e}") from e
    return out
