"""Typed training sections of a profile: ``train`` (DeepSpeed, checkpoints), ``lora``,
``coldstart``, ``rft``, ``grpo`` and ``metarm``.

Defaults are the paper's numbers where it gives them (RFT lr 5e-6 at batch 1024,
GRPO lr 4e-7 at batch 512 with G=4 and beta=0.08, meta RM lr 1e-5); the ``tiny``
and ``demo`` profiles scale them down for a CPU. This module imports nothing
heavy, so :mod:`spct.config` can import it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_TRAIN_DATA = "builtin:verifiable?n=200&seed=1&split=train"  # evaluation reads split=heldout: no shared input


Orders = Literal["random", "rotations"]
ORDERS_HELP = (
    "random: each sample its own seeded shuffle | rotations: sample j shows rotation j (mod n) of the responses, "
    "so k a multiple of n puts the gold once in every slot and a position shortcut earns nothing"
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrainConfig(_Section):
    """What every stage shares: the DeepSpeed engine, optimisation and checkpoints."""

    zero_stage: int = Field(0, ge=0, le=3, description="ZeRO stage 0-3")
    offload_optimizer: bool = Field(False, description="ZeRO-2/3: optimizer state in CPU memory (uses DeepSpeed's CPUAdam)")
    offload_params: bool = Field(False, description="ZeRO-3: parameters in CPU memory")
    gather_for_generation: bool = Field(
        True,
        description="ZeRO-3 GRPO rollouts: gather the whole policy once per rollout (fast; needs the full model in one "
        "device's memory) instead of every layer at every decoded token",
    )
    bf16: bool | None = Field(None, description="None = bf16 on CUDA, fp32 on CPU")
    optimizer: Literal["torch", "deepspeed"] = Field(
        "torch", description="torch AdamW (no JIT build) | deepspeed FusedAdam/CPUAdam (JIT-compiles once)"
    )
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float = Field(1.0, ge=0.0, description="global grad-norm clip; 0 = off")
    warmup_steps: int = Field(0, ge=0, description="linear warm-up, then constant")
    gradient_checkpointing: bool = False
    checkpoint_every: int = Field(0, ge=0, description="optimizer steps between checkpoints; 0 = none")
    keep_last: int = Field(2, ge=1, description="checkpoints kept on disk")
    seed: int = 0
    log_every: int = Field(1, ge=1)


class LoraSection(_Section):
    """LoRA adapters through peft; the saved model has them merged in."""

    enabled: bool = False
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class ColdStartConfig(_Section):
    """Template-critique SFT on the verifiable data: a bootstrap for small bases, not the paper's recipe."""

    data: str = DEFAULT_TRAIN_DATA
    perms: int = Field(2, ge=1, description="shuffled presentations of each item")
    orders: Orders = Field(
        "random", description="random: each presentation its own shuffle | rotations: presentation j is rotation j of a seeded order, so perms = n shows the gold once in every slot"
    )
    template: Literal["full", "short", "reference"] = Field(
        "full", description="full: generic criteria + one analysis sentence per response | short: one principle line for the item's kind + one line per response (about half the tokens) | reference: short, plus the judge's own answer, compared with each response's"
    )
    verdict_weight: float = Field(
        1.0, ge=1.0, description="loss weight of the critique's decision tokens (correct/wrong, the boxed scores) relative "
        "to the text around them, which the model mostly copies and learns in a few steps"
    )
    steps: int = Field(100, ge=1)
    lr: float = Field(1e-5, gt=0)
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step (all ranks)")
    micro_batch_size: int = Field(4, ge=1)
    max_length: int = Field(2048, ge=16, description="longer sequences are dropped, not cut")


class RFTConfig(_Section):
    data: str = DEFAULT_TRAIN_DATA
    limit: int | None = Field(None, ge=1, description="first N training items")
    n_samples: int = Field(3, ge=1, description="trajectories per item (the paper's N)")
    hint: bool = Field(True, description="hinted sampling for items with no right trajectory")
    orders: Orders = Field("random", description=ORDERS_HELP)
    temperature: float | None = Field(None, ge=0.0, description="None = sampling.temperature")
    max_new_tokens: int | None = Field(None, ge=1, description="None = sampling.max_new_tokens")
    token_budget: int | None = Field(None, ge=64, description="padded tokens per generate() micro-batch; None = sampling.token_budget")
    lr: float = Field(5e-6, gt=0)
    batch_size: int = Field(1024, ge=1)
    micro_batch_size: int = Field(4, ge=1)
    epochs: int = Field(1, ge=1)
    max_length: int = Field(4096, ge=16)
    # The curriculum (reasoning-gym specs only): an item whose N samples are all right teaches
    # nothing and is dropped, so a level the model has mastered leaves RFT almost nothing to keep.
    curriculum: bool = Field(
        True, description="with a reasoning-gym: data spec, sample the next curriculum level (level= + 1) while the "
        "items sampled are too easy (max_too_easy) and too few were kept (min_keep_rate); other data: no effect"
    )
    max_too_easy: float = Field(
        0.5, ge=0.0, le=1.0, description="a level whose share of too-easy items (all N right) is above this is raised"
    )
    min_keep_rate: float = Field(
        0.25, ge=0.0, le=1.0, description="the curriculum stops once this share of all items sampled yielded a kept trajectory"
    )
    curriculum_rounds: int = Field(3, ge=0, description="levels sampled above the spec's level, at most")
    max_level: int | None = Field(
        None, ge=0, description="highest level the curriculum samples; None = the top level every task of the spec has"
    )


class GRPOConfig(_Section):
    data: str = DEFAULT_TRAIN_DATA
    limit: int | None = Field(None, ge=1)
    group_size: int = Field(4, ge=2, description="G samples per item, each with its own shuffle")
    orders: Orders = Field("random", description=ORDERS_HELP)
    batch_size: int = Field(512, ge=1, description="items per step (x G rollouts)")
    micro_batch_size: int = Field(8, ge=1, description="rollouts per forward/backward")
    steps: int = Field(900, ge=1)
    epochs: int = Field(1, ge=1, description="optimisation passes over each step's rollouts")
    lr: float = Field(4e-7, gt=0)
    beta: float = Field(0.08, ge=0.0, description="k3 KL penalty to the reference")
    clip_eps: float = Field(0.2, gt=0.0, description="PPO ratio clip")
    temperature: float | None = Field(None, ge=0.0, description="None = sampling.temperature")
    max_new_tokens: int | None = Field(None, ge=1, description="None = sampling.max_new_tokens")
    token_budget: int | None = Field(None, ge=64, description="padded tokens per generate() micro-batch; None = sampling.token_budget")
    min_new_tokens: int = Field(0, ge=0, description="benchmarks force equal completion lengths with it")
    ref_device: Literal["same", "cpu"] = Field("same", description="where the frozen reference lives (full fine-tuning)")
    # Dynamic sampling (DAPO): a group whose G rewards are equal has zero advantage and no gradient.
    dynamic_sampling: bool = Field(
        True, description="update on groups with reward spread: drop zero-spread groups and sample more items from the "
        "stream to replace them (at most max_resample_rounds more rounds); a step with no spread at all is skipped | "
        "false: every step updates on its first batch_size items, as the paper does"
    )
    max_resample_rounds: int = Field(
        3, ge=0, le=999, description="dynamic sampling: generation rounds after the first per step, each sampling at most "
        "batch_size more items; if the groups with spread still fall short, zero-spread groups make up the batch"
    )

    @model_validator(mode="after")
    def _micro_fits(self) -> "GRPOConfig":
        rollouts = self.batch_size * self.group_size
        if rollouts % self.micro_batch_size:
            raise ValueError(
                f"batch_size x group_size = {rollouts} rollouts is not a multiple of micro_batch_size={self.micro_batch_size}"
            )
        return self


class MetaRMConfig(_Section):
    samples: str | None = Field(None, description="RFT's samples.jsonl; None = sample fresh trajectories")
    data: str = DEFAULT_TRAIN_DATA
    limit: int | None = Field(None, ge=1)
    n_samples: int = Field(4, ge=1, description="trajectories per item when sampling fresh")
    fresh: bool = Field(
        False, description="with samples: also sample fresh trajectories of data/limit from --model (e.g. the final GRM) and train on both"
    )
    orders: Orders = Field("random", description=ORDERS_HELP)
    temperature: float | None = Field(None, ge=0.0, description="None = sampling.temperature")
    max_new_tokens: int | None = Field(None, ge=1, description="None = sampling.max_new_tokens")
    token_budget: int | None = Field(None, ge=64, description="padded tokens per generate() micro-batch; None = sampling.token_budget")
    lr: float = Field(1e-5, gt=0)
    epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    micro_batch_size: int = Field(8, ge=1)
    max_length: int = Field(2048, ge=16, description="prompt is cut from the left beyond this")
    heldout: float = Field(0.2, gt=0.0, lt=1.0, description="fraction of items held out for AUC/accuracy")
    balance: bool = Field(True, description="downsample the larger class to the smaller")
