"""The stages find signal: GRPO's dynamic sampling drops groups whose rewards are all equal and
replaces them from the item stream; RFT's curriculum raises a reasoning-gym spec's level when its
items are too easy. Scripted judges (real engines that decide right or wrong per item, through the
real judging path: prompts rendered, critiques parsed, rewards and RFT's rules applied) make the
situations exact; the tiny model runs both stages end to end and the logs are read back."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

pytest.importorskip("torch")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from spct.engine.sampler import Generation, SamplingParams  # noqa: E402
from spct.tracking import JsonlLogger, read_jsonl_metrics  # noqa: E402
from spct.train.config import RFTConfig  # noqa: E402
from spct.train.grpo import collect_groups  # noqa: E402
from spct.train.rft import sample_levels  # noqa: E402
from spct.train.sft import stream  # noqa: E402
from spct.types import Example, user  # noqa: E402

_BLOCK = re.compile(r"\[Response (\d+) start\]\n(.*?)\n\[Response \1 end\]", re.DOTALL)
PARAMS = SamplingParams(max_new_tokens=8, seed=0)


class ScriptedJudge:
    """An engine whose critique of an item's ``j``-th sample is right when ``right(example, j)``:
    it finds the item by its question in the prompt, the gold among the response blocks, and scores
    the gold 9 and the others 2 (or, when wrong, the gold 2 and the first other response 9)."""

    tokenizer = None  # no chat template: the prompt is the chat's text

    def __init__(self, examples: Sequence[Example], right: Callable[[Example, int], bool]) -> None:
        self.by_question = {ex.messages[-1].content: ex for ex in examples}
        self.right = right
        self.calls: Counter[str] = Counter()

    def render(self, chat: Sequence[dict[str, str]]) -> str:
        return "\n\n".join(m["content"] for m in chat)

    def generate(self, prompts: Sequence[str], params: SamplingParams, n: int = 1, progress: bool = False) -> list[list[Generation]]:
        out = []
        for p in prompts:
            ex = max((e for q, e in self.by_question.items() if q in p), key=lambda e: len(e.messages[-1].content))
            blocks = [body for _, body in _BLOCK.findall(p)]
            gold = blocks.index(ex.responses[ex.best])
            ok = self.right(ex, self.calls[ex.id])
            self.calls[ex.id] += 1
            top = gold if ok else next(i for i in range(len(blocks)) if i != gold)
            scores = [9 if i == top else 2 for i in range(len(blocks))]
            text = f"Analysis: scripted.\nScores: \\boxed{{{', '.join(map(str, scores))}}}"
            out.append([Generation(text, len(p.split()), [1, 2, 3], True) for _ in range(n)])
        return out


def items(kinds: Sequence[str]) -> list[Example]:
    """Hand-made pairs whose question names how the scripted judge treats them."""
    return [Example(id=f"q{i}", source="hand", messages=[user(f"Question {i} ({k}): which is right?")],
                    responses=[f"answer {i} A", f"answer {i} B"], best=i % 2, meta={"kind": k})
            for i, k in enumerate(kinds)]  # fmt: skip


def in_stream_order(kinds: Sequence[str]) -> list[Example]:
    """Items that the shuffled stream (seed 0) draws in the order of ``kinds``, in its first epoch."""
    order = stream(len(kinds), 0, 0, len(kinds))
    placed = [""] * len(kinds)
    for pos, kind in zip(order, kinds):
        placed[pos] = kind
    return items(placed)


def by_kind(ex: Example, j: int) -> bool:
    # easy: always right; hard: always wrong; mixed: right on every other sample (reward spread).
    return {"easy": True, "hard": False, "mixed": j % 2 == 0}[ex.meta["kind"]]


def collect(examples, *, per_rank, max_rounds, dynamic=True, position=0, group_size=2):
    engine = ScriptedJudge(examples, by_kind)
    return collect_groups(engine, examples, group_size=group_size, per_rank=per_rank, params=PARAMS, position=position,
                          seed=0, dynamic=dynamic, max_rounds=max_rounds)  # fmt: skip


# ---- GRPO: dynamic sampling ------------------------------------------------------------------


def test_zero_spread_groups_are_dropped_and_replaced_from_the_stream():
    # The first batch has 1 group with spread; the next round takes 4 items (1 in 4 had spread, 3
    # missing: capped at a batch) and finds 2; the last takes ceil(1 x 8 / 3) = 3 and finds the fourth.
    examples = in_stream_order(["mixed", "easy", "hard", "easy", "mixed", "hard", "mixed", "easy", "mixed", "hard",
                                "easy", "hard"])  # fmt: skip
    got = collect(examples, per_rank=4, max_rounds=3)
    picked = [got.groups[i] for i in got.picked]
    assert len(picked) == 4 and all(g.spread and g.example.meta["kind"] == "mixed" for g in picked)
    dropped = [g for g in got.groups if not g.spread]
    assert dropped and all(set(g.rewards) in ({1.0}, {-1.0}) for g in dropped)
    s = got.stats
    assert s["updated_with_spread"] == 1.0 and s["skipped"] == 0 and s["groups_updated"] == 4
    assert s["groups_sampled"] == s["items_consumed"] == len(got.groups) == got.position == 11
    assert s["groups_with_spread"] == 4 and s["zero_spread_groups"] == 7 / 11 and len(dropped) == 7
    assert s["resample_rounds"] == 2


def test_bounded_rounds_make_up_the_batch_with_zero_spread_groups():
    examples = in_stream_order(["easy", "mixed", "hard", "easy", "mixed", "mixed"])
    got = collect(examples, per_rank=4, max_rounds=0)
    assert got.position == 4 and got.stats["resample_rounds"] == 0  # no extra round allowed
    assert len(got.picked) == 4 and sum(got.groups[i].spread for i in got.picked) == 1
    assert got.stats["updated_with_spread"] == 0.25 and got.stats["skipped"] == 0


def test_no_spread_after_the_bounded_rounds_skips_the_step_and_cycles_the_stream():
    examples = items(["easy", "hard", "easy"])
    got = collect(examples, per_rank=2, max_rounds=2, position=1)
    assert got.skipped and got.picked == []
    s = got.stats
    # No rate to go by: every round takes a whole batch; 2 + 2 + 2 items from position 1 reach epoch 2.
    assert s["resample_rounds"] == 2 and s["items_consumed"] == 6 and got.position == 7
    assert s["data_epoch"] == 2 and s["skipped"] == 1 and s["groups_with_spread"] == 0
    assert "updated_with_spread" not in s  # nothing was updated: no share to report


def test_without_dynamic_sampling_the_first_batch_is_the_update():
    examples = items(["easy", "hard", "easy", "hard"])
    got = collect(examples, per_rank=2, max_rounds=3, dynamic=False)
    assert got.position == 2 and len(got.picked) == 2 and not got.skipped  # the paper's step: no spread, still an update
    assert got.stats["updated_with_spread"] == 0.0


def test_grpo_on_the_tiny_model_logs_sampling_and_skips_steps_without_signal(tmp_path):
    """The random tiny model never writes a score (every reward -1): each step samples its batch,
    resamples, finds no spread and is skipped; the weights stay as they were; the log says all of it."""
    from safetensors.torch import load_file

    from spct.config import load_profile
    from spct.engine.models import tiny_dir
    from spct.train import grpo

    p = load_profile("tiny")
    p = p.model_copy(update={
        "train": p.train.model_copy(update={"checkpoint_every": 1, "keep_last": 1}),
        "grpo": p.grpo.model_copy(update={"steps": 2, "batch_size": 2, "group_size": 2, "micro_batch_size": 4, "limit": 3,
                                          "max_new_tokens": 8, "max_resample_rounds": 1}),
    })  # fmt: skip
    summary = grpo.train(p, tmp_path, logger=JsonlLogger(tmp_path / "m.jsonl"), progress=False)
    steps = [r["metrics"] for r in read_jsonl_metrics(tmp_path / "m.jsonl")]
    assert len(steps) == 2 and summary["skipped_steps"] == 2
    for s in steps:
        assert s["skipped"] == 1 and s["groups_with_spread"] == 0 and s["resample_rounds"] == 1
        assert s["groups_sampled"] == s["items_consumed"] == 4 and s["reward"] == -1.0 and "kl" not in s
    assert [s["data_epoch"] for s in steps] == [1, 2]  # 3 items: the stream reshuffles and goes on
    # the position is in the last checkpoint's state, which --resume reads back
    from spct.train.runtime import STATE_FILE, latest_checkpoint

    state = json.loads((latest_checkpoint(tmp_path / "checkpoints") / STATE_FILE).read_text())
    assert grpo.resume_position(state, 2) == state["stream_position"] == 8 == summary["stream_position"]
    before, after = load_file(tiny_dir() / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert all((before[k] == after[k]).all() for k in before)  # skipped steps never stepped the optimizer


# ---- RFT: the curriculum ---------------------------------------------------------------------

SPEC = "reasoning-gym:leg_counting?n=4&seed=0&split=train&level=0"


def load_items(spec: str) -> list[Example]:
    from spct.data import load

    return load(spec).examples


def level_items(level: int) -> list[Example]:
    from spct.data.reasoning_gym import with_level

    return load_items(with_level(SPEC, level))


def right_at_level_zero(ex: Example, j: int) -> bool:
    # Level 0 is mastered (every sample right: too easy); above it only the first sample is right.
    return ex.meta["level"] == 0 or j == 0


def test_curriculum_raises_the_level_when_every_item_is_too_easy():
    from spct.data.reasoning_gym import with_level

    level0, level1 = level_items(0), level_items(1)
    engine = ScriptedJudge(level0 + level1, right_at_level_zero)
    cfg = RFTConfig(data=SPEC, n_samples=2)
    data, sampled, levels = sample_levels(engine, SPEC, level0, cfg, PARAMS, load=load_items)
    assert [r["level"] for r in levels] == [0, 1] and levels[1]["spec"] == with_level(SPEC, 1)
    assert (levels[0]["items_too_easy"], levels[0]["keep_rate"], levels[0]["too_easy_rate"]) == (4, 0.0, 1.0)
    assert (levels[1]["items_kept"], levels[1]["keep_rate"], levels[1]["trajectory_keep_rate"]) == (4, 1.0, 0.5)
    # Level 1 met the keep-rate target (4 of the 8 items sampled): no third level.
    assert data.counts["items"] == 8 and data.counts["items_kept"] == 4 and len(sampled) == 8
    assert {t.item_id for t in data.kept} == {ex.id for ex in level1}

    again = ScriptedJudge(level0, right_at_level_zero)
    _, _, off = sample_levels(again, SPEC, level0, cfg.model_copy(update={"curriculum": False}), PARAMS, load=load_items)
    assert [r["level"] for r in off] == [None]  # the option off: one round, the spec as written


def test_rft_on_the_tiny_model_logs_keep_rates_and_levels(tmp_path):
    """The random tiny model keeps nothing; the keep rates and the level's counts are in the log
    (and counts.json, levels.json) before RFT refuses to train on nothing. No item was too easy,
    so the level stays."""
    from spct.config import load_profile
    from spct.train import rft

    p = load_profile("tiny")
    p = p.model_copy(update={"rft": p.rft.model_copy(update={"data": SPEC.replace("n=4", "n=2"), "limit": None, "n_samples": 2,
                                                             "max_new_tokens": 8})})  # fmt: skip
    with pytest.raises(ValueError, match="no trajectory was kept"):
        rft.run(p, tmp_path, logger=JsonlLogger(tmp_path / "m.jsonl"), progress=False)
    logged = {}
    for rec in read_jsonl_metrics(tmp_path / "m.jsonl"):
        logged.update(rec["metrics"])
    assert logged["rft_keep_rate"] == 0.0 and logged["rft_trajectory_keep_rate"] == 0.0 and logged["rft_items"] == 2
    assert logged["rft_level"] == 0 and logged["rft_level_items"] == 2 and logged["rft_level_too_easy_rate"] == 0.0
    levels = json.loads((tmp_path / "levels.json").read_text())
    assert [r["level"] for r in levels] == [0] and levels[0]["items_unsolved"] == 2
