"""Supervised fine-tuning with the loss on generated tokens only: the cold start and RFT both end here.

    loss = sum_t w_t * -log p(token_t | prefix) / sum_t w_t     over completion tokens (prompt masked)

``w_t`` is 1 unless an example carries its own weights (the cold start can weigh a critique's
verdict tokens above the text it copies).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spct.train import runtime
from spct.train.config import LoraSection, TrainConfig

IGNORE = -100


@dataclass(frozen=True)
class SFTExample:
    """One training sequence: the rendered judge prompt and the critique the model should write."""

    prompt_ids: list[int]
    completion_ids: list[int]
    weights: tuple[float, ...] | None = None  # one per completion token; None = all 1

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def encode(tokenizer: Any, prompt: str, completion_ids: Sequence[int]) -> SFTExample:
    """Prompt tokens exactly as the sampler encodes them (chat template, no extra specials)."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return SFTExample(list(ids), list(completion_ids))


def encode_text(
    tokenizer: Any, prompt: str, completion: str, spans: Sequence[tuple[int, int]] = (), weight: float = 1.0
) -> SFTExample:
    """A written (not sampled) completion, closed by the end-of-turn token the sampler stops on.

    Tokens overlapping a character span in ``spans`` get loss weight ``weight`` (the rest 1).
    """
    from spct.engine.sampler import stop_token_ids

    stop = stop_token_ids(tokenizer)[-1]
    if not spans or weight == 1.0:
        ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        return encode(tokenizer, prompt, [*ids, stop])
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    weights = [weight if any(a < e and s < b for s, e in spans) else 1.0 for a, b in enc["offset_mapping"]]
    ex = encode(tokenizer, prompt, [*enc["input_ids"], stop])
    return SFTExample(ex.prompt_ids, ex.completion_ids, (*weights, 1.0))


def collate(batch: Sequence[SFTExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask (B, T), labels (B, T) with IGNORE on prompt/pad,
    and, when any example carries weights, weights (B, T) (1 where an example has none, 0 off labels)."""
    import torch

    width = max(len(ex) for ex in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    weighted = any(ex.weights is not None for ex in batch)
    weights = torch.zeros((len(batch), width), dtype=torch.float32) if weighted else None
    for i, ex in enumerate(batch):
        seq = ex.prompt_ids + ex.completion_ids
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(ex.prompt_ids) : len(seq)] = torch.tensor(ex.completion_ids)
        if weights is not None:
            weights[i, len(ex.prompt_ids) : len(seq)] = torch.tensor(ex.weights or [1.0] * len(ex.completion_ids))
    out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if weights is not None:
        out["weights"] = weights
    return out


def sft_loss(logits: Any, labels: Any, weights: Any = None) -> tuple[Any, int]:
    """Next-token NLL over labelled positions (weighted mean with ``weights``), and how many there were.

    logits: (B, T, V) for input positions; labels: (B, T), IGNORE where no loss; weights: (B, T) or None.
    """
    import torch.nn.functional as F

    pred = logits[:, :-1].float()  # (B, T-1, V): position t predicts token t+1
    target = labels[:, 1:]  # (B, T-1)
    n = int((target != IGNORE).sum())
    if weights is None:
        loss = F.cross_entropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="sum")
        return loss / max(n, 1), n
    nll = F.cross_entropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1), ignore_index=IGNORE, reduction="none")
    w = weights[:, 1:].reshape(-1) * (target.reshape(-1) != IGNORE)
    return (nll * w).sum() / w.sum().clamp(min=1e-8), n


def loss_window(labels: Any) -> int:
    """How many trailing positions' logits the loss reads: from the one before the batch's earliest
    labelled token to the end (the prompt's positions need no logits)."""
    cols = (labels != IGNORE).any(dim=0).nonzero()
    first = int(cols[0]) if len(cols) else labels.size(1)
    return max(1, min(labels.size(1), labels.size(1) - first + 1))


def forward_loss(model: Any, batch: Mapping[str, Any]) -> tuple[Any, int]:
    """:func:`sft_loss` of ``model`` on a collated batch, with the LM head run only over
    :func:`loss_window` (on the demo's ~255-token prompts and ~90-token critiques that skips about
    three quarters of the vocabulary projections); the same loss as projecting every position."""
    keep = loss_window(batch["labels"])
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    weights = batch.get("weights")
    return sft_loss(logits, batch["labels"][:, -keep:], None if weights is None else weights[:, -keep:])


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The item order of one pass: a fixed function of (seed, epoch), so resuming needs only the step."""
    import torch

    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def stream(n: int, seed: int, start: int, count: int) -> list[int]:
    """Items ``start .. start+count`` of the endless shuffled stream over ``n`` items."""
    out = []
    for pos in range(start, start + count):
        epoch, i = divmod(pos, n)
        if i == 0 or not out:
            order = epoch_order(n, seed, epoch)
        out.append(order[i])
    return out


def train_sft(
    model: Any,
    tokenizer: Any,
    data: Sequence[SFTExample],
    *,
    stage: str,
    steps: int,
    lr: float,
    batch_size: int,
    micro_batch_size: int,
    train: TrainConfig,
    lora: LoraSection,
    out_dir: Path,
    device: Any,
    logger: Any,
    config: Mapping[str, Any],
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``steps`` optimizer steps of prompt-masked SFT; writes ``out_dir/model`` and returns a summary."""
    if not data:
        raise ValueError(f"{stage}: no training sequences")
    out_dir = Path(out_dir)
    _, world, _ = runtime.init_env()
    gas = runtime.accumulation(batch_size, micro_batch_size, world)
    runtime.seed_everything(train.seed)
    rt = runtime.initialize(model, train, lr=lr, micro_batch=micro_batch_size, grad_accum=gas, device=device, lora=lora.enabled)
    ckpt_root = out_dir / "checkpoints"
    state = runtime.resume_point(rt, ckpt_root, resume)
    start = state["step"] if state else 0
    if rt.is_main:
        logger.log_params({"stage": stage, "sequences": len(data), "world_size": world, **config})

    pad = tokenizer.pad_token_id
    rt.module.train()
    t0 = time.perf_counter()

    def one_step(step: int) -> dict[str, float]:
        t_step = time.perf_counter()
        losses, n_tok = [], 0
        for micro in range(gas):
            first = step * batch_size + (micro * world + rt.rank) * micro_batch_size
            batch = collate([data[i] for i in stream(len(data), train.seed, first, micro_batch_size)], pad)
            batch = {k: v.to(rt.device) for k, v in batch.items()}
            loss, n = forward_loss(rt.engine, batch)
            rt.backward(loss)
            rt.step()
            losses.append(loss.item())
            n_tok += n
        dt = time.perf_counter() - t_step
        metrics = {"loss": sum(losses) / len(losses), "lr": rt.lr(), "tokens": float(n_tok),
                   "tokens_per_s": n_tok * world / dt, "samples_per_s": batch_size / dt}
        if (norm := rt.grad_norm()) is not None:
            metrics["grad_norm"] = norm
        return metrics

    history = runtime.run_steps(rt, one_step, stage=stage, start=start, steps=steps, train=train, ckpt_root=ckpt_root,
                                config=dict(config), logger=logger, progress=progress)
    last = history[-1] if history else {}
    summary = {
        "stage": stage, "steps": steps, "resumed_from": start, "sequences": len(data), "world_size": world,
        "seconds": round(time.perf_counter() - t0, 2), "trained_tokens": int(sum(h["tokens"] for h in history)),
        **{f"final_{k}": v for k, v in last.items() if k != "tokens"},
    }  # fmt: skip
    if rt.is_main:
        runtime.save_model(rt.module, tokenizer, out_dir / "model")
        logger.log_artifact(out_dir / "model")
    rt.barrier()
    return summary
