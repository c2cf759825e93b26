"""GRPO's pieces as pure tensor functions: rewards, group advantages, the clipped k3-KL loss, rollouts."""

import math

import pytest

torch = pytest.importorskip("torch")

from spct.grm.judge import Sample  # noqa: E402
from spct.grm.parse import parse_judgment  # noqa: E402
from spct.train.grpo import build_rollouts, group_advantages, grpo_loss, rule_reward  # noqa: E402
from spct.types import Example, user  # noqa: E402


def test_rule_reward_is_plus_minus_one_with_no_format_reward():
    ex = Example(id="a", source="t", messages=[user("q")], responses=["x", "y"], best=1)

    def s(text):
        r = parse_judgment(text, 2)
        return Sample([0, 1], "p", text, r, getattr(r, "scores", None), 1, [1], True)

    assert rule_reward(ex, s("\\boxed{2, 9}")) == 1.0
    assert rule_reward(ex, s("\\boxed{9, 2}")) == -1.0
    assert rule_reward(ex, s("\\boxed{7, 7}")) == -1.0  # tie
    assert rule_reward(ex, s("no scores at all")) == -1.0  # parse failure: same as wrong, no extra penalty


def test_group_advantages_normalise_within_groups_and_zero_spread_gives_zero():
    r = torch.tensor([[1.0, -1.0, -1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    a = group_advantages(r)
    assert torch.all(a[1:] == 0)
    assert torch.allclose(a[0].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(a[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) / (r[0].std() + 1e-4))


def test_loss_gradient_at_ratio_one_is_advantage_weighted_and_token_level():
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.1, 0.2, 0.3]])).requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    adv = torch.tensor([2.0, -1.0])
    loss, st = grpo_loss(logp, logp.detach(), None, adv, mask, clip_eps=0.2, beta=0.0, n_tokens=5)
    loss.backward()
    # d/dlogp of -ratio*A at ratio 1 is -A, divided by the 5 tokens of the step; padding gets nothing.
    expected = -(adv[:, None] * mask) / 5
    assert torch.allclose(logp.grad, expected)
    assert math.isclose(loss.item(), -(2 * 2 - 1 * 3) / 5, rel_tol=1e-6)
    assert st["tokens"] == 5 and st["clipped"] == 0 and st["kl"] == 0


def test_clipping_stops_the_gradient_beyond_the_trust_region():
    old = torch.zeros(1, 4)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.1, 0.7]])).requires_grad_(True)  # ratios 1.5, 0.5, 1.1, 0.7
    mask = torch.ones(1, 4)
    loss, st = grpo_loss(logp, old, None, torch.tensor([1.0]), mask, clip_eps=0.2, beta=0.0, n_tokens=4)
    loss.backward()
    # A > 0: the ratio 1.5 token is clipped (no gradient); 0.5 is below 1-eps but min() keeps it unclipped.
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] != 0 and logp.grad[0, 2] != 0
    assert st["clipped"] == 1


def test_k3_kl_is_zero_at_the_reference_and_positive_elsewhere():
    ref = torch.log(torch.tensor([[0.3, 0.6]]))
    mask = torch.ones(1, 2)
    zero_adv = torch.zeros(1)
    same, st0 = grpo_loss(ref.clone(), ref, ref, zero_adv, mask, clip_eps=0.2, beta=0.08, n_tokens=2)
    assert same.item() == 0 and st0["kl"] == 0
    moved = torch.log(torch.tensor([[0.5, 0.4]])).requires_grad_(True)
    loss, st = grpo_loss(moved, moved.detach(), ref, zero_adv, mask, clip_eps=0.2, beta=0.08, n_tokens=2)
    d = ref - moved.detach()
    assert torch.allclose(loss, 0.08 * (torch.exp(d) - d - 1).sum() / 2)
    assert st["kl"] > 0
    loss.backward()
    # The penalty pulls each token's log-prob back toward the reference.
    assert torch.all(torch.sign(moved.grad) == torch.sign(moved.detach() - ref))


def test_rollouts_put_every_completion_at_the_same_column():
    ro = build_rollouts([[5, 6, 7], [8]], [[1, 2], [3, 4, 9]], [0.5, -0.5], pad=0)
    assert ro.input_ids.tolist() == [[5, 6, 7, 1, 2, 0], [0, 0, 8, 3, 4, 9]]
    assert ro.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert ro.completion_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert ro.rows(slice(1, 2)).input_ids.tolist() == [[0, 0, 8, 3, 4, 9]]


def test_completion_logps_do_not_depend_on_padding():
    """Left padding with position ids from the mask: each row scores as if it were alone."""
    from spct.engine import load_model
    from spct.train.grpo import completion_logps

    model, tok = load_model("tiny", device="cpu")
    prompts, completions = [[5, 6, 7, 8, 9], [10, 11]], [[12, 13], [14, 15, 16]]
    both = completion_logps(model, build_rollouts(prompts, completions, [0.0, 0.0], tok.pad_token_id))
    for i in range(2):
        alone = completion_logps(model, build_rollouts([prompts[i]], [completions[i]], [0.0], tok.pad_token_id))
        n = len(completions[i])
        assert torch.allclose(both[i, :n], alone[0, :n], atol=1e-5)


def test_select_groups_takes_spread_first_in_sampling_order_then_fills_up():
    from spct.train.grpo import select_groups

    spread = [False, True, False, True, True, False]
    assert select_groups(spread, 2) == [1, 3]  # enough with spread: the zero-spread groups are dropped
    assert select_groups(spread, 3) == [1, 3, 4]
    assert select_groups(spread, 5) == [0, 1, 2, 3, 4]  # too few: zero-spread ones make up the number
    assert select_groups([False, False], 2) == [0, 1]


def test_round_size_follows_the_spread_rate_seen_and_is_capped_at_a_batch():
    from spct.train.grpo import round_size

    assert round_size(0, 4, 8, 16) == 0  # nothing missing: no round
    assert round_size(3, 1, 4, 16) == 12  # 1 in 4 had spread: 12 items to find 3 more
    assert round_size(3, 1, 4, 8) == 8
    assert round_size(1, 3, 8, 16) == 3  # ceil(1 x 8 / 3)
    assert round_size(5, 0, 8, 16) == 16  # no spread yet: no rate to go by, a whole batch


def test_stream_position_is_read_back_from_the_checkpoint_and_falls_back_to_whole_batches():
    from spct.train.grpo import resume_position

    assert resume_position(None, 16) == 0  # a fresh start
    assert resume_position({"step": 3}, 16) == 48  # a checkpoint from before dynamic sampling: step x batch_size
    assert [resume_position({"step": s, "stream_position": p}, 16) for s, p in ((1, 23), (2, 40))] == [23, 40]
    # (A side file once held the positions, and a torn last line had to be skipped; the position now
    # lives in the checkpoint's trainer_state.json, written with the checkpoint or not at all.)
