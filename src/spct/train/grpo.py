"""Rule-based online RL (GRPO), the second stage of SPCT.

Each step: ``batch_size`` items, ``G`` critiques per item (each with its own
shuffled response order, through the shared sampler), reward +1 when the parsed
scores put the true best strictly on top and -1 otherwise (parse failures
included, no format reward), group-normalised advantages, then ``epochs``
passes of the clipped, token-level policy loss with a k3 KL penalty to the
reference model. With LoRA the reference is the same model with its adapters
switched off; without, a frozen copy.

    spct grpo --config tiny --model runs/tiny/rft/model --out runs/tiny/grpo
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    totals = {"samples": 0, "tokens": 0}

    def one_step(step: int) -> dict[str, float]:
        t_step = time.perf_counter()
        # 1. sample G critiques per item with the current policy
        batch = [examples[i] for i in stream(len(examples), tcfg.seed, step * cfg.batch_size + rt.rank * per_rank, per_rank)]
        rt.module.eval()
        # A new seed every step: fresh shuffles and draws, the same ones again after a resume.
        params = sampling_params(profile, cfg, seed_offset=tcfg.seed * 1_000_003 + step * 1000, min_new_tokens=cfg.min_new_tokens)
        with runtime.generation_weights(rt, tcfg.gather_for_generation):
            samples = [j.samples for j in judge(engine, [judge_item(ex, cfg.group_size, params.seed, cfg.orders) for ex in batch], params)]
        t_gen = time.perf_counter() - t_step

        # 2. rule rewards -> group-normalised advantages
        rewards = torch.tensor([[rule_reward(ex, s) for s in row] for ex, row in zip(batch, samples)])  # (B, G)
        adv = group_advantages(rewards).flatten()  # (B*G,)
        flat = [s for row in samples for s in row]
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
        gen_tokens = sum(s.completion_tokens for s in flat)
        totals["samples"] += len(flat)
        totals["tokens"] += gen_tokens
        metrics = {
            "reward": float(rewards.mean()),
            "accuracy": float((rewards > 0).float().mean()),
            "parse_rate": sum(s.scores is not None for s in flat) / len(flat),
            "kl": kl_sum / max(tok_sum, 1.0),
            "clip_frac": clip_sum / max(tok_sum, 1.0),
            "mean_length": gen_tokens / len(flat),
            "zero_spread_groups": float((rewards.std(dim=1) == 0).float().mean()),
            "loss": sum(losses) / cfg.epochs,
            "lr": rt.lr(),
            "samples_per_s": len(flat) * world / dt,
            "tokens_per_s": gen_tokens * world / dt,
            "generate_s": t_gen,
            "step_s": dt,
        }
        return metrics

    history = runtime.run_steps(rt, one_step, stage="grpo", start=start, steps=cfg.steps, train=tcfg, ckpt_root=ckpt_root,
                                config=config, logger=logger, progress=progress, show=("reward", "kl"))

    seconds = time.perf_counter() - t0
    done = history or [{}]
    summary = {
        "stage": "grpo", "steps": cfg.steps, "resumed_from": start, "items": len(examples),
        "seconds": round(seconds, 2),
        "samples_per_s": totals["samples"] * world / seconds if history else 0.0,
        "tokens_per_s": totals["tokens"] * world / seconds if history else 0.0,
        "first_reward": done[0].get("reward"), "last_reward": done[-1].get("reward"),
        "mean_reward": _mean(h["reward"] for h in history), "mean_parse_rate": _mean(h["parse_rate"] for h in history),
        "final_kl": done[-1].get("kl"),
    }  # fmt: skip
    if rt.is_main:
        runtime.save_model(rt.module, tokenizer, out_dir / "model")
        logger.log_artifact(out_dir / "model")
    rt.barrier()
    return summary


def _to(ro: Rollouts, device: Any) -> Rollouts:
    move = lambda t: None if t is None else t.to(device)  # noqa: E731
    return Rollouts(*(move(t) for t in (ro.input_ids, ro.attention_mask, ro.completion_mask, ro.advantages, ro.ref_logp, ro.old_logp)))


def _mean(xs: Any) -> float | None:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else None

