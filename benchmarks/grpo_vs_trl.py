"""spct's GRPO against TRL's GRPOTrainer on the same model, prompts, G, completion length and steps.

Each side runs in its own subprocess, so each peak RSS (the process's high-water
mark, ``ru_maxrss``) is its own. Both sample with temperature 0.5, generate
exactly ``--max-new-tokens`` tokens (min = max), use beta = 0.08 with a frozen
reference copy (full fine-tuning, as TRL does without PEFT), one optimisation
epoch per batch, AdamW and gradient checkpointing (TRL's GRPOConfig default;
``--no-gradient-checkpointing`` turns it off on both sides). samples/s counts generated completions per second of
wall time over the steps after the first (warm-up). Also measures RFT sampling
throughput (N=3 shuffled critiques per item through the shared sampler).

    .venv/bin/python benchmarks/grpo_vs_trl.py                    # demo model (SmolLM2-135M-Instruct)
    .venv/bin/python benchmarks/grpo_vs_trl.py --model tiny --steps 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def judge_prompts(spec: str, n: int) -> tuple[list[str], list[dict]]:
    """Rendered judge prompts of the first ``n`` verifiable items (original order) and their items."""
    from spct.data import load
    from spct.engine import load_model
    from spct.grm.prompt import build_chat, render

    _, tok = load_model(spec, device="cpu")
    items = load(f"builtin:verifiable?n={n}&seed=1").examples
    prompts = [render(tok, build_chat(ex.messages, ex.responses)) for ex in items]
    return prompts, [{"best": ex.best, "n": ex.n} for ex in items]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_spct(a: argparse.Namespace) -> dict:
    from spct.config import load_profile
    from spct.tracking import JsonlLogger, read_jsonl_metrics
    from spct.train import grpo

    overrides = [
        f"model.spec={a.model}", "lora.enabled=false", f"grpo.steps={a.steps}", f"grpo.batch_size={a.prompts}",
        f"grpo.group_size={a.group}", f"grpo.micro_batch_size={a.prompts * a.group}", f"grpo.max_new_tokens={a.max_new_tokens}",
        f"grpo.min_new_tokens={a.max_new_tokens}", "grpo.temperature=0.5", "grpo.beta=0.08", "grpo.lr=1e-6",
        f"grpo.data=builtin:verifiable?n={a.prompts * a.steps}&seed=1", "sampling.token_budget=1000000",
        "train.checkpoint_every=0", f"train.gradient_checkpointing={str(a.gradient_checkpointing).lower()}",
    ]  # fmt: skip
    profile = load_profile("demo", overrides)
    out = Path(tempfile.mkdtemp(prefix="bench-spct-"))
    logger = JsonlLogger(out / "metrics.jsonl")
    t0 = time.perf_counter()
    grpo.train(profile, out, logger=logger, progress=False)
    logger.close()
    steps = [m["metrics"] for m in read_jsonl_metrics(out / "metrics.jsonl")]
    shutil.rmtree(out, ignore_errors=True)
    timed = steps[1:] or steps
    seconds = sum(m["step_s"] for m in timed)
    return {
        "side": "spct", "steps": len(steps), "wall_s": time.perf_counter() - t0,
        "step_s": [round(m["step_s"], 3) for m in steps],
        "samples_per_s": a.prompts * a.group * len(timed) / seconds, "peak_rss_mib": peak_rss_mib(),
        "mean_length": sum(m["mean_length"] for m in steps) / len(steps),
    }  # fmt: skip


def run_trl(a: argparse.Namespace) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from spct.engine.models import model_dir
    from spct.grm.parse import parse_judgment
    from spct.grm.rules import is_strictly_right

    prompts, meta = judge_prompts(a.model, a.prompts * a.steps)
    ds = Dataset.from_list([{"prompt": p, "best": m["best"], "n": m["n"]} for p, m in zip(prompts, meta)])

    def rule_reward(completions, best, n, **_):
        out = []
        for text, b, k in zip(completions, best, n):
            r = parse_judgment(text, k)
            out.append(1.0 if is_strictly_right(getattr(r, "scores", None), b) else -1.0)
        return out

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.marks = [time.perf_counter()]

        def on_step_end(self, args, state, control, **kw):
            self.marks.append(time.perf_counter())

    clock = Clock()
    out = tempfile.mkdtemp(prefix="bench-trl-")
    cfg = GRPOConfig(
        output_dir=out, max_steps=a.steps, per_device_train_batch_size=a.prompts * a.group,
        num_generations=a.group, max_completion_length=a.max_new_tokens, temperature=0.5, beta=0.08,
        learning_rate=1e-6, use_cpu=True, bf16=False, logging_steps=1, report_to=[], save_strategy="no",
        generation_kwargs={"min_new_tokens": a.max_new_tokens}, shuffle_dataset=False, seed=0,
        dataloader_num_workers=0, disable_tqdm=True, gradient_checkpointing=a.gradient_checkpointing,
    )  # fmt: skip
    trainer = GRPOTrainer(model=str(model_dir(a.model)), reward_funcs=rule_reward, args=cfg, train_dataset=ds, callbacks=[clock])
    t0 = time.perf_counter()
    trainer.train()
    steps = [b - a_ for a_, b in zip(clock.marks, clock.marks[1:])]
    shutil.rmtree(out, ignore_errors=True)
    timed = steps[1:] or steps
    return {
        "side": "trl", "steps": len(steps), "wall_s": time.perf_counter() - t0, "step_s": [round(s, 3) for s in steps],
        "samples_per_s": a.prompts * a.group * len(timed) / sum(timed), "peak_rss_mib": peak_rss_mib(),
    }  # fmt: skip


def run_rft_sampling(a: argparse.Namespace) -> dict:
    from spct.data import load
    from spct.engine import Engine, SamplingParams
    from spct.train.rft import rejective_sample

    engine = Engine.load(a.model, device="cpu")
    items = load(f"builtin:verifiable?n={a.rft_items}&seed=1").examples
    params = SamplingParams(temperature=0.5, max_new_tokens=a.max_new_tokens, min_new_tokens=a.max_new_tokens, token_budget=1_000_000)
    t0 = time.perf_counter()
    data = rejective_sample(engine, items, 3, params, hint=False)
    dt = time.perf_counter() - t0
    tokens = sum(len(t.completion_ids) for t in data.trajectories)
    return {"side": "rft_sampling", "items": len(items), "samples": len(data.trajectories), "seconds": dt,
            "samples_per_s": len(data.trajectories) / dt, "tokens_per_s": tokens / dt, "peak_rss_mib": peak_rss_mib()}  # fmt: skip


def child(side: str, a: argparse.Namespace) -> dict:
    args = [sys.executable, __file__, "--side", side, "--model", a.model, "--steps", str(a.steps), "--prompts", str(a.prompts),
            "--group", str(a.group), "--max-new-tokens", str(a.max_new_tokens), "--rft-items", str(a.rft_items),
            "--gradient-checkpointing" if a.gradient_checkpointing else "--no-gradient-checkpointing"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("torch", "transformers", "trl", "deepspeed", "peft")} | {"python": platform.python_version()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="demo", help="demo | tiny | any spct model spec")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--prompts", type=int, default=1, help="items per step")
    p.add_argument("--group", type=int, default=4, help="G")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--rft-items", type=int, default=8)
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True,
                   help="on both sides (TRL's GRPOConfig turns it on by default; so does this benchmark)")
    p.add_argument("--side", choices=["spct", "trl", "rft_sampling"], help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args()
    if a.side:
        fn = {"spct": run_spct, "trl": run_trl, "rft_sampling": run_rft_sampling}[a.side]
        print(json.dumps(fn(a)))
        return

    results = {side: child(side, a) for side in ("spct", "trl", "rft_sampling")}
    s, t = results["spct"], results["trl"]
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "versions": versions(), "command": " ".join(["benchmarks/grpo_vs_trl.py", *sys.argv[1:]]),
        "setup": {"model": a.model, "steps": a.steps, "prompts_per_step": a.prompts, "G": a.group, "completion_tokens": a.max_new_tokens,
                  "gradient_checkpointing": a.gradient_checkpointing},
        "results": results,
        "speed_ratio": s["samples_per_s"] / t["samples_per_s"], "memory_ratio": s["peak_rss_mib"] / t["peak_rss_mib"],
    }  # fmt: skip
    print(f"{'side':<14}{'samples/s':>12}{'peak RSS MiB':>14}  step seconds")
    for r in (s, t):
        print(f"{r['side']:<14}{r['samples_per_s']:>12.3f}{r['peak_rss_mib']:>14.0f}  {r['step_s']}")
    rf = results["rft_sampling"]
    print(f"spct/trl speed {report['speed_ratio']:.2f}x (target >= 1.5x), peak memory {report['memory_ratio']:.2f}x (target <= 1.0x)")
    print(f"RFT sampling: {rf['samples_per_s']:.2f} samples/s, {rf['tokens_per_s']:.1f} tokens/s ({rf['samples']} critiques of {a.max_new_tokens} tokens)")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
