"""The one place DeepSpeed is wired: process group, engine, optimizer, checkpoints, RNG.

Every stage builds its model, then calls :func:`initialize` and drives the
returned :class:`Runtime` with ``backward`` / ``step``. One code path serves a
single CPU process (tests, the demo: gloo, a one-rank group) and ``deepspeed`` /
``torchrun`` launches over GPUs and nodes (the launchers set RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; we only fill them in when absent).

Checkpoints are directories ``<root>/step-00000012``: written into a temporary
sibling and renamed, so a reader (or ``--resume`` after a SIGKILL) only ever
sees complete ones. Each holds DeepSpeed's model/optimizer/scheduler state, the
RNG state of every rank and ``trainer_state.json`` (step, data position, the
resolved config).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spct.train.config import LoraSection, TrainConfig

STATE_FILE = "trainer_state.json"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


def init_env() -> tuple[int, int, int]:
    """(rank, world size, local rank); a lone process becomes rank 0 of 1 instead of trying MPI."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        # A lone process picks a port the OS says is free: a port derived from the pid collided with
        # other jobs' rendezvous on a shared machine (EADDRINUSE in the cold start of a local run).
        os.environ["MASTER_PORT"] = str(_free_port()) if os.environ["WORLD_SIZE"] == "1" else "29500"
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pick_device(local_rank: int, device: str = "auto") -> Any:
    import torch

    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if device.startswith("cuda:"):
        return torch.device(device)
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def ds_config(cfg: TrainConfig, *, micro_batch: int, grad_accum: int, world: int, bf16: bool) -> dict[str, Any]:
    """The DeepSpeed config for one stage (batch sizes are per optimizer step)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer and cfg.zero_stage >= 2:
        zero["offload_optimizer"] = {"device": "cpu"}
    if cfg.offload_params and cfg.zero_stage == 3:
        zero["offload_param"] = {"device": "cpu"}
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch * grad_accum * world,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        # A client torch optimizer under ZeRO: DeepSpeed wraps it, it only asks us to say so.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def accumulation(batch_size: int, micro_batch_size: int, world: int) -> int:
    """Micro-batches per optimizer step on each rank; the sizes must divide exactly."""
    per_step = micro_batch_size * world
    if batch_size % per_step:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of micro_batch_size x world_size = {micro_batch_size} x {world}"
        )
    return batch_size // per_step


def make_optimizer(params: list[Any], lr: float, cfg: TrainConfig) -> Any:
    import torch

    if cfg.optimizer == "deepspeed" or cfg.offload_optimizer:
        # C++ ops: JIT-compiled into ~/.cache/torch_extensions on first use (minutes).
        from deepspeed.ops.adam import DeepSpeedCPUAdam, FusedAdam

        on_cpu = cfg.offload_optimizer or not torch.cuda.is_available()
        cls = DeepSpeedCPUAdam if on_cpu else FusedAdam
        return cls(params, lr=lr, weight_decay=cfg.weight_decay)
    # foreach=False: the same kernel order on every run, for bit-identical resume on CPU.
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay, foreach=False)


def warmup_schedule(optimizer: Any, warmup_steps: int) -> Any:
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup_steps) if warmup_steps else 1.0)


@dataclass
class Runtime:
    """A DeepSpeed engine and what a training loop asks of it."""

    engine: Any
    rank: int
    world: int
    device: Any
    bf16: bool
    lora: bool

    @property
    def module(self) -> Any:
        return self.engine.module

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def grad_accum(self) -> int:
        return self.engine.gradient_accumulation_steps()

    def backward(self, loss: Any) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        # Every micro-batch: DeepSpeed updates only at the accumulation boundary.
        self.engine.step()

    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def grad_norm(self) -> float | None:
        """The last step's global grad norm where DeepSpeed tracks it (ZeRO 1-3), else None."""
        g = self.engine.get_global_grad_norm()
        return float(g) if g is not None else None

    def barrier(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier()


def initialize(
    model: Any, cfg: TrainConfig, *, lr: float, micro_batch: int, grad_accum: int, device: Any, lora: bool = False
) -> Runtime:
    """Wrap ``model`` (already on ``device``) in a DeepSpeed engine with AdamW and warm-up."""
    import torch

    rank, world, _ = init_env()
    import deepspeed

    if device.type == "cpu" and world == 1:
        # The shared-memory allreduce op only serves several ranks on one host; skip its JIT build.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend=backend, auto_mpi_discovery=False)
    bf16 = cfg.bf16 if cfg.bf16 is not None else device.type == "cuda"
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = make_optimizer(params, lr, cfg)
    scheduler = warmup_schedule(optimizer, cfg.warmup_steps)
    config = ds_config(cfg, micro_batch=micro_batch, grad_accum=grad_accum, world=world, bf16=bf16)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    if world == 1 and cfg.zero_stage == 0:
        # No peer to average with, yet DeepSpeed would still flatten every gradient into an all-reduce
        # bucket: a transient copy of all gradients (~0.2 GB of peak memory on a 135M model).
        # ZeRO 1-3 need this hook even alone: it moves gradients into their partitions.
        engine.enable_backward_allreduce = False
    return Runtime(engine, rank, world, device, bf16, lora)


@contextmanager
def generation_weights(rt: Runtime, gather: bool = True) -> Iterator[Any]:
    """The policy, ready to decode a rollout; yields ``rt.module``.

    Under ZeRO-3 each forward all-gathers every layer's shards and frees them after, and decoding
    runs one forward per token: a 300-token rollout would move the whole model 300 times. With
    ``gather`` the full weights are gathered once for the rollout and the partitioning hooks are
    off until it ends (DeepSpeed's ``unwrap_model_for_generation``, what TRL does without vLLM);
    the sampler still keeps ranks in step, now at the cost of one small all-reduce per token.
    Other stages, or ``gather=False`` (a model too large for one device), leave the model as is.
    """
    if not gather or rt.engine.zero_optimization_stage() != 3:
        yield rt.module
        return
    from deepspeed.runtime.zero import unwrap_model_for_generation

    with unwrap_model_for_generation(rt.engine):
        yield rt.module


# ---- model set-up ---------------------------------------------------------------------------


def prepare_model(model: Any, lora: LoraSection, cfg: TrainConfig) -> Any:
    """Trainable model: LoRA adapters when enabled, gradient checkpointing when asked."""
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if lora.enabled:
        from peft import LoraConfig, get_peft_model

        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()
        peft_cfg = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=lora.target_modules, task_type="CAUSAL_LM",
        )  # fmt: skip
        model = get_peft_model(model, peft_cfg)
    return model


def merged(model: Any) -> Any:
    """The plain transformers model: LoRA folded into the weights (a no-op without LoRA)."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def save_model(model: Any, tokenizer: Any, out: Path) -> Path:
    """A loadable Hugging Face directory (``spct.engine.load_model(out)``), written atomically."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged(model).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


# ---- RNG and checkpoints --------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: Path) -> Path | None:
    found = checkpoints(Path(root))
    return found[-1] if found else None


def save_checkpoint(rt: Runtime, root: Path, step: int, state: dict[str, Any], keep_last: int) -> Path | None:
    """Write checkpoint ``step`` (all ranks call this), then keep only the newest ``keep_last``."""
    import torch

    root = Path(root)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    if rt.is_main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # a leftover of a run killed mid-save
    rt.barrier()
    # Frozen base weights are not state under LoRA: they are reloaded from the base model.
    rt.engine.save_checkpoint(str(tmp), tag="ds", save_latest=False, exclude_frozen_parameters=rt.lora)
    torch.save(rng_state(), tmp / f"rng_rank{rt.rank}.pt")
    rt.barrier()
    if rt.is_main:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2, default=str))
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    rt.barrier()
    return final if rt.is_main else None


def load_checkpoint(rt: Runtime, path: Path) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and this rank's RNG; returns ``trainer_state.json``."""
    import torch

    path = Path(path)
    loaded, _ = rt.engine.load_checkpoint(
        str(path), tag="ds", load_optimizer_states=True, load_lr_scheduler_states=True, load_module_strict=not rt.lora
    )
    if loaded is None:
        raise RuntimeError(f"{path}: DeepSpeed could not load the checkpoint")
    rng = path / f"rng_rank{rt.rank}.pt"
    if rng.is_file():
        set_rng_state(torch.load(rng, weights_only=False))
    return json.loads((path / STATE_FILE).read_text())


def resume_point(rt: Runtime, root: Path, resume: bool) -> dict[str, Any] | None:
    """The state to continue from under ``--resume`` (None: start fresh)."""
    if not resume:
        return None
    ckpt = latest_checkpoint(Path(root))
    if ckpt is None:
        return None
    return load_checkpoint(rt, ckpt)


def maybe_checkpoint(rt: Runtime, cfg: TrainConfig, root: Path, step: int, total: int, state: dict[str, Any]) -> None:
    """Checkpoint after optimizer step ``step`` (1-based) when the schedule says so."""
    if cfg.checkpoint_every and (step % cfg.checkpoint_every == 0 or step == total):
        save_checkpoint(rt, root, step, state, cfg.keep_last)


def run_steps(
    rt: Runtime,
    step_fn: Callable[[int], dict[str, float]],
    *,
    stage: str,
    start: int,
    steps: int,
    train: TrainConfig,
    ckpt_root: Path,
    config: dict[str, Any],
    logger: Any,
    progress: bool = True,
    show: Sequence[str] = ("loss",),
    state: Callable[[], dict[str, Any]] | None = None,
) -> list[dict[str, float]]:
    """The loop every stage shares (SFT, GRPO, the meta RM): ``step_fn(step)`` does one optimizer
    step its own way and returns its metrics; logging, the progress bar and checkpoints happen here,
    the same for all. Starts at ``start`` (a resumed run) and returns the metrics of every step run.
    ``state()`` is what else a step leaves that a resume needs (GRPO's stream position): saved in each
    checkpoint's trainer_state.json, written with the checkpoint, and returned by :func:`resume_point`.
    """
    from tqdm.auto import tqdm

    history = []
    bar = tqdm(range(start, steps), desc=stage, unit="step", disable=not (progress and rt.is_main), initial=start, total=steps)
    for step in bar:
        metrics = step_fn(step)
        history.append(metrics)
        if rt.is_main and (step + 1) % train.log_every == 0:
            logger.log_metrics(metrics, step + 1)
        bar.set_postfix({k: f"{metrics[k]:.4g}" for k in show if k in metrics})
        maybe_checkpoint(rt, train, ckpt_root, step + 1, steps,
                         {"stage": stage, "config": dict(config), **(state() if state else {})})
    return history


def load_for_training(spec: str, dtype: str, device: str, lora: LoraSection, cfg: TrainConfig) -> tuple[Any, Any, Any]:
    """(trainable model on its device, tokenizer, device) for a model spec (tiny, demo, a directory)."""
    from spct.engine import load_model

    _, _, local_rank = init_env()
    dev = pick_device(local_rank, device)
    seed_everything(cfg.seed)  # LoRA's initial adapters are random: the same on every run and rank
    model, tokenizer = load_model(spec, dtype=dtype, device=str(dev))
    return prepare_model(model, lora, cfg), tokenizer, dev
