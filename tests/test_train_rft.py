"""RFT's rules on hand-made trajectories: strict ties, too easy, hinted, parse failures; SFT masking."""

import pytest

from spct.grm.judge import Sample
from spct.grm.parse import Judgment, parse_judgment
from spct.grm.prompt import HINT
from spct.grm.rules import to_original
from spct.train.rft import REASONS, count, label_item, training_prompt
from spct.types import Example, user


def example(best=0, n=2, labels=None):
    return Example(id="q1", source="hand", messages=[user("What is 2 + 2?")], responses=["4.", "5.", "22."][:n],
                   best=best if labels is None else None, labels=labels)  # fmt: skip


def sample(text, n=2, perm=None, prompt="P"):
    perm = perm or list(range(n))
    result = parse_judgment(text, n)
    scores = to_original(result.scores, perm) if isinstance(result, Judgment) else None
    return Sample(perm, prompt, text, result, scores, 10, [1, 2, 3], True)


RIGHT = "Analysis: ok.\nScores: \\boxed{9, 2}"
WRONG = "Analysis: ok.\nScores: \\boxed{2, 9}"
TIE = "Analysis: both fine.\nScores: \\boxed{8, 8}"
NO_BOX = "Analysis: I think the first one."


def reasons(trajs):
    return [(t.reason, t.hinted) for t in trajs]


def test_right_kept_wrong_tie_and_parse_failure_dropped():
    trajs, outcome = label_item(example(), [sample(RIGHT), sample(TIE), sample(NO_BOX), sample(WRONG)])
    assert outcome == "kept"
    assert reasons(trajs) == [("kept", False), ("wrong", False), ("parse_failure", False), ("wrong", False)]
    assert [t.keep for t in trajs] == [True, False, False, False]
    assert trajs[1].right is False and trajs[1].scores == [8, 8]  # a tie is wrong in training


def test_shuffled_scores_are_judged_in_the_original_order():
    # Presented as [response 1, response 0]: "9, 2" in that order favours response 1.
    t, _ = label_item(example(best=1), [sample(RIGHT, perm=[1, 0]), sample(RIGHT)])
    assert [x.reason for x in t] == ["kept", "wrong"]


def test_all_right_is_too_easy():
    trajs, outcome = label_item(example(), [sample(RIGHT)] * 3)
    assert outcome == "too_easy"
    assert [t.reason for t in trajs] == ["too_easy"] * 3 and not any(t.keep for t in trajs)
    assert all(t.right for t in trajs)


def test_hinted_sampling_keeps_only_right_hinted_and_flags_them():
    plain = [sample(WRONG), sample(NO_BOX), sample(TIE)]
    hinted = [sample(WRONG, prompt="P+hint"), sample(RIGHT, prompt="P+hint")]
    trajs, outcome = label_item(example(), plain, hinted)
    assert outcome == "hinted"
    assert reasons(trajs) == [("wrong", False), ("parse_failure", False), ("wrong", False),
                              ("hinted_wrong", True), ("hinted", True)]  # fmt: skip
    kept = [t for t in trajs if t.keep]
    assert len(kept) == 1 and kept[0].hinted and kept[0].prompt == "P+hint"


def test_unsolved_without_hints_and_hints_ignored_when_solved():
    trajs, outcome = label_item(example(), [sample(WRONG), sample(NO_BOX)])
    assert outcome == "unsolved" and not any(t.keep for t in trajs)
    trajs, outcome = label_item(example(), [sample(RIGHT), sample(WRONG)], [sample(RIGHT)])
    assert outcome == "kept" and len(trajs) == 2  # hinted samples only count for unsolved items


def test_label_only_items_use_the_label_order():
    ex = example(n=3, labels=[1.0, 0.0, 0.5])
    trajs, _ = label_item(ex, [sample("\\boxed{9, 1, 5}", 3), sample("\\boxed{9, 5, 1}", 3)])
    assert [t.reason for t in trajs] == ["kept", "wrong"]


def test_counts_per_reason_and_item():
    t1, o1 = label_item(example(), [sample(RIGHT), sample(NO_BOX)])
    t2, o2 = label_item(example(), [sample(RIGHT)] * 2)
    t3, o3 = label_item(example(), [sample(TIE)], [sample(RIGHT)])
    c = count(t1 + t2 + t3, [o1, o2, o3])
    assert set(REASONS) <= set(c)
    assert (c["kept"], c["parse_failure"], c["too_easy"], c["wrong"], c["hinted"]) == (1, 1, 2, 1, 1)
    assert (c["items"], c["items_kept"], c["items_too_easy"], c["items_hinted"], c["items_unsolved"]) == (3, 1, 1, 1, 0)


def test_hinted_trajectories_train_without_the_hint():
    from spct.engine.tiny import build_tokenizer
    from spct.grm.prompt import build_chat, render

    tok = build_tokenizer()
    ex = example()
    hinted_prompt = render(tok, build_chat(ex.messages, [ex.responses[1], ex.responses[0]], hint=1))
    trajs, _ = label_item(ex, [sample(WRONG)], [sample(WRONG, perm=[1, 0], prompt=hinted_prompt)])  # shown reversed: right
    kept = next(t for t in trajs if t.keep)
    prompt = training_prompt(tok, ex, kept)
    assert HINT.format(j=2) in kept.prompt and "best response" not in prompt
    assert prompt == render(tok, build_chat(ex.messages, [ex.responses[1], ex.responses[0]]))


def test_sft_loss_is_on_completion_tokens_only():
    import torch

    from spct.train.sft import IGNORE, SFTExample, collate, sft_loss

    batch = collate([SFTExample([5, 6, 7], [8, 9]), SFTExample([5], [8, 9, 10])], pad_id=0)
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, IGNORE, 8, 9], [IGNORE, 8, 9, 10, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    logits = torch.randn(2, 5, 12, requires_grad=True)
    loss, n = sft_loss(logits, batch["labels"])
    loss.backward()
    assert n == 5
    # Position t predicts t+1: only positions before a labelled token get gradient.
    touched = logits.grad.abs().sum(-1) > 0
    assert touched.tolist() == [[False, False, True, True, False], [True, True, True, False, False]]
    with pytest.raises(ValueError, match="no training sequences"):
        from spct.train.sft import train_sft

        train_sft(None, None, [], stage="x", steps=1, lr=1.0, batch_size=1, micro_batch_size=1, train=None,
                  lora=None, out_dir=None, device=None, logger=None, config={})  # fmt: skip


def test_keep_rates_count_items_with_a_kept_trajectory_and_trajectories_kept():
    from spct.train.rft import keep_rates, merge

    t1, o1 = label_item(example(), [sample(RIGHT), sample(NO_BOX)])  # kept
    t2, o2 = label_item(example(), [sample(RIGHT)] * 2)  # too easy
    t3, o3 = label_item(example(), [sample(TIE)], [sample(RIGHT)])  # hinted
    t4, o4 = label_item(example(), [sample(WRONG)], [sample(WRONG)])  # unsolved
    c = count(t1 + t2 + t3 + t4, [o1, o2, o3, o4])
    assert keep_rates(c) == {"keep_rate": 2 / 4, "trajectory_keep_rate": 2 / 8, "too_easy_rate": 1 / 4}
    assert keep_rates(count([], [])) == {"keep_rate": 0.0, "trajectory_keep_rate": 0.0, "too_easy_rate": 0.0}

    from spct.train.rft import RFTData

    both = merge([RFTData(t1 + t2, count(t1 + t2, [o1, o2])), RFTData(t3 + t4, count(t3 + t4, [o3, o4]))])
    assert both.counts == c and len(both.trajectories) == 8


def counts_of(items, too_easy, kept):
    return {**dict.fromkeys(REASONS, 0), "items": items, "items_too_easy": too_easy, "items_kept": kept,
            "items_hinted": 0, "items_unsolved": items - too_easy - kept, "kept": kept}  # fmt: skip


def test_next_level_rises_only_while_items_are_too_easy_and_too_few_are_kept():
    from spct.train.config import RFTConfig
    from spct.train.rft import next_level

    cfg = RFTConfig(max_too_easy=0.5, min_keep_rate=0.25, curriculum_rounds=2)
    easy = counts_of(10, 9, 1)
    assert next_level(0, 5, easy, easy, cfg, 0) == 1
    assert next_level(0, 5, easy, easy, cfg, 2) is None  # rounds spent
    assert next_level(5, 5, easy, easy, cfg, 0) is None  # the top level
    assert next_level(0, 5, counts_of(10, 5, 1), counts_of(10, 5, 1), cfg, 0) is None  # half too easy: not above 0.5
    assert next_level(0, 5, counts_of(10, 1, 1), counts_of(10, 1, 1), cfg, 0) is None  # mostly unsolved: harder won't help
    assert next_level(1, 5, counts_of(20, 12, 6), easy, cfg, 1) is None  # 6 of 20 kept overall: target met


def test_with_level_rewrites_only_the_level_of_a_reasoning_gym_spec():
    from spct.data.reasoning_gym import max_level, parse_spec, with_level
    from spct.train.rft import top_level

    spec = "reasoning-gym:gcd,lcm?n=10&seed=3&split=train&level=1"
    assert with_level(spec, 2) == "reasoning-gym:gcd,lcm?n=10&seed=3&split=train&level=2"
    assert parse_spec(with_level("reasoning-gym:gcd", 4)) == {**parse_spec("reasoning-gym:gcd"), "level": 4}
    with pytest.raises(ValueError, match="unknown option"):
        with_level("reasoning-gym:gcd?lvl=1", 2)
    assert top_level("reasoning-gym:gcd,leg_counting") == min(max_level("gcd"), max_level("leg_counting"))
    assert top_level("reasoning-gym:leg_counting", 3) == 3
