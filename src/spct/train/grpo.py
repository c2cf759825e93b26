"""Rule-based online RL (GRPO), the second stage of SPCT.

Each step: ``batch_size`` items, ``G`` critiques per item (each with its own
shuffled response order, through the shared sampler), reward +1 when the parsed
scores put the true best strictly on top and -1 otherwise (parse failures
included, no format reward), group-normalised advantages, then ``epochs``
passes of the clipped, token-level policy loss with a k3 KL penalty to the
reference model. With LoRA the reference is the same model with its adapters
switched off; without, a frozen copy.

Dynamic sampling (DAPO, ``grpo.dynamic_sampling``): a group whose G rewards are
equal has zero advantage and carries no gradient, so it is dropped and replaced
by groups of further items from the training stream, in at most
``grpo.max_resample_rounds`` more generation rounds (:func:`collect_groups`). The
stream's position then moves by a varying number of items per step; it is saved in each
checkpoint's state (:func:`resume_position`) so ``--resume`` goes on from it.

    spct grpo --config tiny --model runs/tiny/rft/model --out runs/tiny/grpo
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spct.engine.sampler import all_reduce
from spct.grm.judge import Sample, judge
from spct.grm.rules import is_right
from spct.train import runtime
from spct.train.rft import judge_item, sampling_params
from spct.train.sft import stream
from spct.types import Example


# ---- rewards and advantages -----------------------------------------------------------------


def rule_reward(ex: Example, sample: Sample) -> float:
    return 1.0 if is_right(ex, sample.scores) else -1.0


def group_advantages(rewards: Any, eps: float = 1e-4) -> Any:
    """(B, G) rewards -> (B, G) advantages ``(r - mean) / (std + eps)`` within each group.

    A group whose rewards are all equal has ``r - mean == 0``: it contributes nothing.
    """
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


# ---- dynamic sampling -----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One item's G samples and their rule rewards."""

    example: Example
    samples: list[Sample]
    rewards: list[float]

    @property
    def spread(self) -> bool:
        """Whether the rewards differ: only then is any advantage non-zero."""
        return max(self.rewards) != min(self.rewards)


def select_groups(spread: Sequence[bool], want: int) -> list[int]:
    """Indices (in sampling order) of the ``want`` groups a step updates on: the groups with reward
    spread first, then, only when too few had spread, zero-spread ones to make up the number.

    The update needs exactly ``want`` groups per rank (DeepSpeed's accumulation count is fixed);
    a zero-spread group adds only its KL term, which is what every group added before dynamic sampling.
    """
    with_spread = [i for i, s in enumerate(spread) if s]
    without = [i for i, s in enumerate(spread) if not s]
    return sorted((with_spread + without)[:want])


def round_size(missing: int, spread: int, sampled: int, cap: int) -> int:
    """Items the next round samples: enough to find ``missing`` groups with spread at the rate seen so
    far in this step, at most ``cap`` (one batch: a round never needs more memory than the first);
    ``cap`` when nothing had spread yet, since there is no rate to go by."""
    if missing <= 0:
        return 0
    if spread == 0:
        return cap
    return max(1, min(cap, math.ceil(missing * sampled / spread)))


@dataclass
class Collected:
    """What :func:`collect_groups` sampled for one step on this rank, and what the step updates on."""

    groups: list[Group]  # every group sampled, in stream order
    picked: list[int]  # indices into groups: the step's update batch (empty when skipped)
    position: int  # the stream position after this step
    stats: dict[str, float]  # over all ranks

    @property
    def skipped(self) -> bool:
        return not self.picked


def collect_groups(
    engine: Any,
    examples: Sequence[Example],
    *,
    group_size: int,
    per_rank: int,
    params: Any,
    position: int,
    seed: int,
    dynamic: bool = True,
    max_rounds: int = 0,
    orders: str = "random",
    rank: int = 0,
    world: int = 1,
    device: Any = None,
) -> Collected:
    """Sample one step's groups from the item stream starting at ``position``.

    Round 0 takes ``per_rank`` items per rank, exactly as a step without dynamic sampling does. With
    ``dynamic``, while some rank has fewer than ``per_rank`` groups with reward spread and fewer than
    ``max_rounds`` extra rounds were run, every rank samples :func:`round_size` more items (the
    largest any rank asks for, so all ranks generate in step), round ``r`` with sampling seed
    ``params.seed + r``. The step then updates on :func:`select_groups`' choice; with ``dynamic``
    and no group with spread on any rank it is skipped (``picked`` empty) instead of updating on nothing.
    Rank ``r`` of ``world`` reads items ``r * n .. (r + 1) * n`` of each round's ``world * n``.
    """
    start, groups, rounds, n = position, [], 0, per_rank
    while True:
        idx = stream(len(examples), seed, position + rank * n, n)
        position += n * world
        batch = [examples[i] for i in idx]
        p = replace(params, seed=params.seed + rounds)
        judged = judge(engine, [judge_item(ex, group_size, p.seed, orders) for ex in batch], p)
        groups += [Group(ex, j.samples, [rule_reward(ex, s) for s in j.samples]) for ex, j in zip(batch, judged)]
        spread = sum(g.spread for g in groups)
        if not dynamic or rounds >= max_rounds:
            break
        want = all_reduce([round_size(per_rank - spread, spread, len(groups), per_rank)], "max", device)[0]
        if want == 0:
            break
        n, rounds = int(want), rounds + 1
    picked = select_groups([g.spread for g in groups], per_rank)
    picked_spread = sum(groups[i].spread for i in picked)
    sampled_all, spread_all, picked_spread_all = all_reduce([len(groups), spread, picked_spread], "sum", device)
    if dynamic and picked_spread_all == 0:
        picked = []
    updated = len(picked) * world
    stats = {
        "groups_sampled": sampled_all,
        "groups_with_spread": spread_all,
        "zero_spread_groups": 1.0 - spread_all / sampled_all,
        "groups_updated": float(updated),
        "resample_rounds": float(rounds),
        "items_consumed": float(position - start),
        # The stream reshuffles every pass over the items (a new epoch seed, spct.train.sft.epoch_order).
        "data_epoch": float((position - 1) // len(examples)),
        "skipped": float(not picked),
    }
    if updated:  # undefined on a skipped step: a 0 there would read as "updated on zero-spread groups"
        stats["updated_with_spread"] = picked_spread_all / updated
    return Collected(groups, picked, position, stats)


def resume_position(state: dict[str, Any] | None, batch_size: int) -> int:
    """Where the item stream stands when a run resumes from checkpoint ``state`` (None: a fresh start).

    A checkpoint saves the position with it; one from before dynamic sampling has none, and there
    every step had taken exactly ``batch_size`` items: ``step * batch_size``.
    """
    if not state:
        return 0
    return int(state.get("stream_position", state["step"] * batch_size))


# ---- the loss -------------------------------------------------------------------------------


@dataclass
class Rollouts:
    """One rank's rollouts of a step, prompts left-padded so every completion starts at column P.

    R = rows (items x G), P = longest prompt, C = longest completion.
    """

    input_ids: Any  # (R, P + C) [pad.. prompt | completion ..pad]
    attention_mask: Any  # (R, P + C)
    completion_mask: Any  # (R, C) 1 on generated tokens
    advantages: Any  # (R,)
    ref_logp: Any = None  # (R, C) log-probs under the reference
    old_logp: Any = None  # (R, C) under the sampling policy; None = this step's own (one epoch)

    @property
    def width(self) -> int:
        return int(self.completion_mask.shape[1])

    def rows(self, idx: slice) -> "Rollouts":
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return Rollouts(*(pick(t) for t in (self.input_ids, self.attention_mask, self.completion_mask,
                                             self.advantages, self.ref_logp, self.old_logp)))  # fmt: skip


def build_rollouts(prompt_ids: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], advantages: Sequence[float], pad: int) -> Rollouts:
    import torch

    p = max(len(x) for x in prompt_ids)
    c = max(max(len(x) for x in completions), 1)
    n = len(prompt_ids)
    ids = torch.full((n, p + c), pad, dtype=torch.long)
    mask = torch.zeros((n, p + c), dtype=torch.long)
    cmask = torch.zeros((n, c), dtype=torch.float32)
    for i, (pr, co) in enumerate(zip(prompt_ids, completions)):
        ids[i, p - len(pr) : p] = torch.tensor(pr)
        ids[i, p : p + len(co)] = torch.tensor(co, dtype=torch.long)
        mask[i, p - len(pr) : p + len(co)] = 1
        cmask[i, : len(co)] = 1
    return Rollouts(ids, mask, cmask, torch.tensor(advantages, dtype=torch.float32))


def completion_logps(model: Any, ro: Rollouts) -> Any:
    """(R, C) log p(completion token | prefix), computing logits only for the completion columns."""
    import torch

    c = ro.width
    positions = (ro.attention_mask.cumsum(-1) - 1).clamp(min=0)  # as the sampler's prefill numbers them
    logits = model(input_ids=ro.input_ids, attention_mask=ro.attention_mask, position_ids=positions,
                   logits_to_keep=c + 1, use_cache=False).logits  # fmt: skip
    logits = logits[:, :-1].float()  # (R, C, V): column t predicts completion token t
    target = ro.input_ids[:, -c:]  # (R, C)
    picked = torch.gather(logits, -1, target.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)  # (R, C)


def grpo_loss(
    logp: Any, old_logp: Any, ref_logp: Any | None, adv: Any, mask: Any, *, clip_eps: float, beta: float, n_tokens: int
) -> tuple[Any, dict[str, Any]]:
    """Token-level clipped surrogate + beta * k3 KL, summed and divided by the step's token count.

    logp, old_logp, ref_logp, mask: (R, C); adv: (R,).
    k3 = exp(ref - logp) - (ref - logp) - 1 >= 0, an unbiased KL(policy || ref) estimate.
    """
    import torch

    ratio = torch.exp(logp - old_logp)  # (R, C)
    a = adv.unsqueeze(1)  # (R, 1)
    surrogate = torch.min(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)
    per_token = -surrogate
    kl = torch.zeros_like(logp)
    if ref_logp is not None and beta > 0:
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1
        per_token = per_token + beta * kl
    loss = (per_token * mask).sum() / max(n_tokens, 1)
    clipped = ((ratio < 1 - clip_eps) & (a < 0)) | ((ratio > 1 + clip_eps) & (a > 0))
    stats = {
        "kl": float((kl.detach() * mask).sum()),
        "clipped": float((clipped.float() * mask).sum()),
        "tokens": float(mask.sum()),
    }
    return loss, stats


# ---- the loop -------------------------------------------------------------------------------


def train(
    profile: Any,
    out_dir: Path,
    *,
    logger: Any,
    model_spec: str | None = None,
    examples: Sequence[Example] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run GRPO as ``profile.grpo`` says; writes ``out_dir/model`` and returns a summary."""
    import torch

    from spct.data import load
    from spct.engine import Engine

    cfg, tcfg = profile.grpo, profile.train
    out_dir = Path(out_dir)
    if examples is None:
        examples = load(cfg.data).examples
    examples = list(examples)[: cfg.limit] if cfg.limit else list(examples)
    if not examples:
        raise ValueError("grpo: no training items")
    _, world, _ = runtime.init_env()
    if cfg.batch_size % world:
        raise ValueError(f"grpo.batch_size={cfg.batch_size} is not a multiple of world_size={world}")
    per_rank = cfg.batch_size // world
    rows = per_rank * cfg.group_size
    if rows % cfg.micro_batch_size:
        raise ValueError(f"{rows} rollouts per rank is not a multiple of grpo.micro_batch_size={cfg.micro_batch_size}")
    gas = rows // cfg.micro_batch_size

    runtime.seed_everything(tcfg.seed)
    model, tokenizer, device = runtime.load_for_training(
        model_spec or profile.model.spec, profile.model.dtype, profile.model.device, profile.lora, tcfg
    )
    ref = None
    if not profile.lora.enabled and cfg.beta > 0:
        # Without adapters to switch off, the reference is a frozen copy of the starting weights.
        ref = copy.deepcopy(model).eval().requires_grad_(False)
        ref.to("cpu" if cfg.ref_device == "cpu" else device)
    rt = runtime.initialize(model, tcfg, lr=cfg.lr, micro_batch=cfg.micro_batch_size, grad_accum=gas, device=device, lora=profile.lora.enabled)
    ckpt_root = out_dir / "checkpoints"
    state = runtime.resume_point(rt, ckpt_root, resume)
    start = state["step"] if state else 0
    config = profile.model_dump(mode="json")
    if rt.is_main:
        logger.log_params({"stage": "grpo", "items": len(examples), "world_size": world, **config})

    engine = Engine(rt.module, tokenizer, "policy")
    pad = tokenizer.pad_token_id
    t0 = time.perf_counter()
    totals = {"samples": 0, "tokens": 0, "skipped": 0}
    # Where the item stream stands: dynamic sampling moves it by a varying number of items per step.
    cursor = {"position": resume_position(state, cfg.batch_size)}

    def one_step(step: int) -> dict[str, float]:
        t_step = time.perf_counter()
        # 1. sample G critiques per item with the current policy (more items where groups had no spread)
        rt.module.eval()
        # A new seed every step: fresh shuffles and draws, the same ones again after a resume. Steps are
        # 1000 apart, so resample round r's seed (+ r, at most 999) never repeats another step's.
        params = sampling_params(profile, cfg, seed_offset=tcfg.seed * 1_000_003 + step * 1000, min_new_tokens=cfg.min_new_tokens)
        with runtime.generation_weights(rt, tcfg.gather_for_generation):
            got = collect_groups(engine, examples, group_size=cfg.group_size, per_rank=per_rank, params=params,
                                 position=cursor["position"], seed=tcfg.seed, dynamic=cfg.dynamic_sampling,
                                 max_rounds=cfg.max_resample_rounds, orders=cfg.orders, rank=rt.rank, world=world,
                                 device=device)  # fmt: skip
        t_gen = time.perf_counter() - t_step
        cursor["position"] = got.position

        # What the policy did on everything it sampled (not only the groups kept for the update).
        every = [s for g in got.groups for s in g.samples]
        all_rewards = [r for g in got.groups for r in g.rewards]
        gen_tokens = sum(s.completion_tokens for s in every)
        totals["samples"] += len(every)
        totals["tokens"] += gen_tokens
        metrics = {
            "reward": sum(all_rewards) / len(all_rewards),
            "accuracy": sum(r > 0 for r in all_rewards) / len(all_rewards),
            "parse_rate": sum(s.scores is not None for s in every) / len(every),
            "mean_length": gen_tokens / len(every),
            **got.stats,
        }
        if got.skipped:
            # No group on any rank had reward spread: an update would follow the KL term alone.
            totals["skipped"] += 1
            dt = time.perf_counter() - t_step
            return {**metrics, "lr": rt.lr(), "samples_per_s": len(every) * world / dt,
                    "tokens_per_s": gen_tokens * world / dt, "generate_s": t_gen, "step_s": dt}  # fmt: skip

        # 2. rule rewards -> group-normalised advantages, on the groups picked for the update
        picked = [got.groups[i] for i in got.picked]
        rewards = torch.tensor([g.rewards for g in picked])  # (B, G)
        adv = group_advantages(rewards).flatten()  # (B*G,)
        flat = [s for g in picked for s in g.samples]
        prompt_ids = tokenizer([s.prompt for s in flat], add_special_tokens=False)["input_ids"]
        ro = build_rollouts(prompt_ids, [s.completion_ids for s in flat], adv.tolist(), pad)
        n_tokens = int(ro.completion_mask.sum())

        # 3. reference (and, for several epochs, sampling-policy) log-probs, no grad
        with torch.no_grad():
            refs, olds = [], []
            for i in range(0, rows, cfg.micro_batch_size):
                part = _to(ro.rows(slice(i, i + cfg.micro_batch_size)), device)
                if cfg.beta > 0:
                    if ref is not None:
                        refs.append(completion_logps(ref, _to(part, next(ref.parameters()).device)).to(device))
                    else:
                        with rt.module.disable_adapter():
                            refs.append(completion_logps(rt.module, part))
                if cfg.epochs > 1:
                    olds.append(completion_logps(rt.module, part))
            ro.ref_logp = torch.cat(refs) if refs else None
            ro.old_logp = torch.cat(olds) if olds else None

        # 4. epochs x micro-batches of the clipped token-level loss; DeepSpeed steps at the boundary
        rt.module.train()
        losses, kl_sum, clip_sum, tok_sum = [], 0.0, 0.0, 0.0
        for _ in range(cfg.epochs):
            for i in range(0, rows, cfg.micro_batch_size):
                part = _to(ro.rows(slice(i, i + cfg.micro_batch_size)), device)
                logp = completion_logps(rt.engine, part)
                old = part.old_logp if part.old_logp is not None else logp.detach()
                loss, st = grpo_loss(logp, old, part.ref_logp, part.advantages, part.completion_mask,
                                     clip_eps=cfg.clip_eps, beta=cfg.beta, n_tokens=n_tokens)  # fmt: skip
                # DeepSpeed divides by the accumulation count; the loss is already a share of the step's tokens.
                rt.backward(loss * gas)
                rt.step()
                losses.append(loss.item())
                kl_sum, clip_sum, tok_sum = kl_sum + st["kl"], clip_sum + st["clipped"], tok_sum + st["tokens"]

        dt = time.perf_counter() - t_step
        metrics.update({
            "kl": kl_sum / max(tok_sum, 1.0),
            "clip_frac": clip_sum / max(tok_sum, 1.0),
            "loss": sum(losses) / cfg.epochs,
            "lr": rt.lr(),
            "samples_per_s": len(every) * world / dt,
            "tokens_per_s": gen_tokens * world / dt,
            "generate_s": t_gen,
            "step_s": dt,
        })  # fmt: skip
        return metrics

    history = runtime.run_steps(rt, one_step, stage="grpo", start=start, steps=cfg.steps, train=tcfg, ckpt_root=ckpt_root,
                                config=config, logger=logger, progress=progress, show=("reward", "kl"),
                                state=lambda: {"stream_position": cursor["position"]})

    seconds = time.perf_counter() - t0
    done = history or [{}]
    summary = {
        "stage": "grpo", "steps": cfg.steps, "resumed_from": start, "items": len(examples), "world_size": world,
        "seconds": round(seconds, 2),
        "samples_per_s": totals["samples"] * world / seconds if history else 0.0,
        "tokens_per_s": totals["tokens"] * world / seconds if history else 0.0,
        "first_reward": done[0].get("reward"), "last_reward": done[-1].get("reward"),
        "mean_reward": _mean(h["reward"] for h in history), "mean_parse_rate": _mean(h["parse_rate"] for h in history),
        "final_kl": _last(h.get("kl") for h in history),
        "skipped_steps": totals["skipped"], "stream_position": cursor["position"],
        "mean_updated_with_spread": _mean(h["updated_with_spread"] for h in history if "updated_with_spread" in h),
    }  # fmt: skip
    if rt.is_main:
        runtime.save_model(rt.module, tokenizer, out_dir / "model")
        logger.log_artifact(out_dir / "model")
    rt.barrier()
    return summary


def _to(ro: Rollouts, device: Any) -> Rollouts:
    move = lambda t: None if t is None else t.to(device)  # noqa: E731
    return Rollouts(*(move(t) for t in (ro.input_ids, ro.attention_mask, ro.completion_mask, ro.advantages, ro.ref_logp, ro.old_logp)))


def _last(xs: Any) -> float | None:
    """The last value that is not None (a skipped step has no KL)."""
    return next((x for x in reversed(list(xs)) if x is not None), None)


def _mean(xs: Any) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None

