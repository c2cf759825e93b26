"""The meta RM: a scalar head on a causal-LM backbone that rates how trustworthy a critique is.

Trained with binary cross-entropy on the strict right/wrong labels of trajectories
sampled the way RFT samples them (RFT's ``samples.jsonl``, hinted ones excluded
since inference never hints), classes balanced; reports held-out AUC and
accuracy on items it never saw. :class:`MetaRewardModel` implements
:class:`spct.grm.rules.MetaRM`, so evaluation's MetaRM@k and the serving
predictor load it with :meth:`MetaRewardModel.load` and call ``rate``.

    spct metarm --config tiny --samples runs/tiny/rft/samples.jsonl --out runs/tiny/metarm
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

# The inference side (the model, its encoding, save/load) lives in spct.grm.meta so serving and the
# registry load a meta RM without importing training code; re-exported here for the trainer.
from spct.grm.meta import FORMAT, MetaRewardModel, encode_pair, pad_right  # noqa: F401

def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits, labels: (B,) -> mean binary cross-entropy (labels 1 = right)."""
    return nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); nan without both classes.

    >>> auc([0.9, 0.8, 0.1], [True, False, False]), auc([0.5, 0.5], [True, False])
    (1.0, 0.5)
    """
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@dataclass(frozen=True)
class Pair:
    item_id: str
    prompt: str
    critique: str
    right: bool


def pairs_from_trajectories(records: Sequence[Any]) -> list[Pair]:
    """RFT trajectories -> (prompt, critique, right) pairs; hinted ones are left out."""
    return [Pair(t.item_id, t.prompt, t.text, t.right) for t in records if not t.hinted]


def split(pairs: Sequence[Pair], heldout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out whole items (never a trajectory of an item seen in training)."""
    items = sorted({p.item_id for p in pairs})
    random.Random(f"metarm-split:{seed}").shuffle(items)
    n_out = max(1, round(len(items) * heldout)) if len(items) > 1 else 0
    out = set(items[:n_out])
    return [p for p in pairs if p.item_id not in out], [p for p in pairs if p.item_id in out]


def balance(pairs: Sequence[Pair], seed: int) -> list[Pair]:
    """Downsample the larger class to the size of the smaller one."""
    pos = [p for p in pairs if p.right]
    neg = [p for p in pairs if not p.right]
    if not pos or not neg:
        raise ValueError(f"the meta RM needs right and wrong trajectories; got {len(pos)} right and {len(neg)} wrong")
    rng = random.Random(f"metarm-balance:{seed}")
    k = min(len(pos), len(neg))
    chosen = rng.sample(pos, k) + rng.sample(neg, k)
    rng.shuffle(chosen)
    return chosen


def held_out_metrics(model: MetaRewardModel, pairs: Sequence[Pair], batch_size: int) -> dict[str, float]:
    scores = model.rate([p.prompt for p in pairs], [p.critique for p in pairs], batch_size=batch_size)
    labels = [p.right for p in pairs]
    pred = [s >= 0.5 for s in scores]
    tpr = _rate(pr for pr, y in zip(pred, labels) if y)
    tnr = _rate(not pr for pr, y in zip(pred, labels) if not y)
    return {
        "heldout_auc": auc(scores, labels),
        "heldout_accuracy": _rate(pr == y for pr, y in zip(pred, labels)),
        "heldout_balanced_accuracy": (tpr + tnr) / 2,
        "heldout_n": float(len(pairs)),
        "heldout_right_share": _rate(labels),
    }


def _rate(flags: Any) -> float:
    flags = list(flags)
    return sum(flags) / len(flags) if flags else float("nan")


def train(
    profile: Any,
    out_dir: Path,
    *,
    logger: Any,
    model_spec: str | None = None,
    samples: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train the meta RM on RFT-style trajectories; writes ``out_dir/model`` (a :class:`MetaRewardModel`)."""
    from spct.train import runtime
    from spct.train.rft import read_trajectories, rejective_sample, sampling_params
    from spct.train.sft import stream

    cfg, tcfg = profile.metarm, profile.train
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = model_spec or profile.model.spec
    # The backbone is trained in full (or with LoRA on the backbone); the LM head is not needed.
    lm, tokenizer, device = runtime.load_for_training(spec, profile.model.dtype, profile.model.device, _no_lora(profile.lora), tcfg)
    samples = samples or cfg.samples
    trajectories = read_trajectories(Path(samples)) if samples else []
    fresh = 0
    if not samples or cfg.fresh:
        # Trajectories of the model being rated's own kind: with --model the final GRM, its samples
        # join RFT's (the paper trains the meta RM on samples of the GRM it guides).
        from spct.data import load
        from spct.engine import Engine

        examples = load(cfg.data).examples
        examples = examples[: cfg.limit] if cfg.limit else examples
        lm.eval()
        new = rejective_sample(Engine(lm, tokenizer, "policy"), examples, cfg.n_samples, sampling_params(profile, cfg),
                               hint=False, progress=progress, orders=cfg.orders).trajectories  # fmt: skip
        fresh = len(new)
        trajectories = [*trajectories, *new]
    train_pairs, held = split(pairs_from_trajectories(trajectories), cfg.heldout, tcfg.seed)
    train_pairs = balance(train_pairs, tcfg.seed) if cfg.balance else list(train_pairs)

    runtime.seed_everything(tcfg.seed)
    rm = MetaRewardModel.from_causal_lm(lm, tokenizer, cfg.max_length).to(device)
    del lm  # the LM head is dropped with it (tied weights stay in the backbone)
    if profile.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lora = profile.lora
        rm.backbone = get_peft_model(rm.backbone, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                             target_modules=lora.target_modules, task_type="FEATURE_EXTRACTION"))  # fmt: skip
    _, world, _ = runtime.init_env()
    batch_size = cfg.batch_size
    gas = runtime.accumulation(batch_size, cfg.micro_batch_size, world)
    steps = max(1, cfg.epochs * len(train_pairs) // batch_size)
    rt = runtime.initialize(rm, tcfg, lr=cfg.lr, micro_batch=cfg.micro_batch_size, grad_accum=gas, device=device, lora=profile.lora.enabled)
    ckpt_root = out_dir / "checkpoints"
    state = runtime.resume_point(rt, ckpt_root, resume)
    start = state["step"] if state else 0
    config = profile.model_dump(mode="json")
    if rt.is_main:
        logger.log_params({"stage": "metarm", "train_pairs": len(train_pairs), "heldout_pairs": len(held), **config})

    t0 = time.perf_counter()
    rt.module.train()

    def one_step(step: int) -> dict[str, float]:
        losses = []
        for micro in range(gas):
            first = step * batch_size + (micro * world + rt.rank) * cfg.micro_batch_size
            part = [train_pairs[i] for i in stream(len(train_pairs), tcfg.seed, first, cfg.micro_batch_size)]
            ids, mask = pad_right([rm.encode(p.prompt, p.critique) for p in part], rm.pad_id)
            labels = torch.tensor([p.right for p in part], device=device)
            loss = bce_loss(rt.engine(ids.to(device), mask.to(device)), labels)
            rt.backward(loss)
            rt.step()
            losses.append(loss.item())
        return {"loss": sum(losses) / len(losses), "lr": rt.lr()}

    runtime.run_steps(rt, one_step, stage="metarm", start=start, steps=steps, train=tcfg, ckpt_root=ckpt_root,
                      config=config, logger=logger, progress=progress)

    summary: dict[str, Any] = {
        "stage": "metarm", "steps": steps, "world_size": world, "resumed_from": start, "train_pairs": len(train_pairs), "fresh_trajectories": fresh,
        "train_right_share": _rate(p.right for p in train_pairs), "seconds": round(time.perf_counter() - t0, 2),
    }  # fmt: skip
    if held:
        summary.update(held_out_metrics(rm, held, cfg.micro_batch_size))
    if rt.is_main:
        logger.log_metrics({k: v for k, v in summary.items() if k.startswith("heldout_")}, steps)
        rm.save(out_dir / "model", backbone=runtime.merged(rm.backbone))
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        logger.log_artifact(out_dir / "model")
    rt.barrier()
    return summary


def _no_lora(lora: Any) -> Any:
    # LoRA, when enabled, goes on the backbone after the head is attached (not on the causal LM).
    return lora.model_copy(update={"enabled": False})
