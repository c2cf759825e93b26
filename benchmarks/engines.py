"""Generation and reward paths side by side, in one run:

1. The OpenAI engine through spct's own server vs the local sampler: the same
   judge calls (``spct.grm.judge.judge``, k samples per item, fixed length),
   interleaved call by call so both see the same background load; overhead =
   p50(engine) / p50(local) - 1, target <= 10%.
2. A TRL GRPO step rewarded by the async reward client (``SpctReward(url)``,
   the GRM in its own ``spct serve`` process) vs the same GRM called inline
   (a synchronous reward function judging in the trainer's process):
   seconds per optimizer step over the steps after the first.

    .venv/bin/python benchmarks/engines.py --model tiny --max-new-tokens 64
    .venv/bin/python benchmarks/engines.py --model demo --max-new-tokens 200 -k 4

Prints one JSON object (machine, load average at start and end, every timing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serving import NAME, QUESTIONS, Server, make_bundle  # noqa: E402


def engine_overhead(url: str, bundle: Path, runs: int, k: int, items: int, max_new_tokens: int) -> dict:
    from spct.engine import Engine, SamplingParams, open_engine
    from spct.grm.judge import JudgeItem, judge
    from spct.types import user

    local = Engine.load(str(bundle), device="cpu")
    remote = open_engine(f"openai:{url}", tokenizer=str(bundle))
    params = SamplingParams(temperature=0.5, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens)
    t_local, t_remote, same = [], [], []
    for timed in (False, True):  # the first pass warms both paths up at these shapes
        for r in range(runs):
            batch = [JudgeItem([user(f"{q} (#{r}.{i})")], [a, b], k=k)
                     for i, (q, a, b) in enumerate(QUESTIONS[(r + j) % len(QUESTIONS)] for j in range(items))]
            p = SamplingParams(**{**params.__dict__, "seed": r})
            t0 = time.perf_counter()
            a = judge(local, batch, p)
            t1 = time.perf_counter()
            b = judge(remote, batch, p)
            t2 = time.perf_counter()
            if timed:
                t_local.append(t1 - t0)
                t_remote.append(t2 - t1)
                same.append(all(x.verdict == y.verdict and [s.text for s in x.samples] == [s.text for s in y.samples]
                                for x, y in zip(a, b)))
    return {"runs": runs, "items_per_call": items, "k": k, "local_s": [round(x, 3) for x in t_local],
            "engine_s": [round(x, 3) for x in t_remote], "local_p50_s": round(statistics.median(t_local), 4),
            "engine_p50_s": round(statistics.median(t_remote), 4),
            "overhead_p50": round(statistics.median(t_remote) / statistics.median(t_local) - 1, 4),
            "overhead_per_call": [round(b / a - 1, 4) for a, b in zip(t_local, t_remote)],
            "identical_verdicts_and_texts": all(same)}


def grpo_steps(reward_funcs: list, steps: int, out: Path) -> list[float]:
    from datasets import Dataset
    from spct.engine.models import tiny_dir
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
            times.append(time.perf_counter() - self.t0)

    data = Dataset.from_list([{"prompt": q} for q, _, _ in QUESTIONS] * 4)
    cfg = GRPOConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=8, num_generations=4,
                     max_completion_length=16, learning_rate=1e-5, logging_steps=1, report_to=[], save_strategy="no",
                     use_cpu=True, bf16=False, seed=0, gradient_checkpointing=False)
    trainer = GRPOTrainer(model=str(tiny_dir()), reward_funcs=reward_funcs, args=cfg, train_dataset=data, callbacks=[Clock()])
    trainer.train()
    return times


def reward_paths(url: str, bundle: Path, steps: int, k: int, max_new_tokens: int, root: Path) -> dict:
    from spct.integrations.judges import LocalJudge
    from spct.integrations.rewards import RewardSettings, mean_scores, plan, instances
    from spct.integrations.trl_reward import SpctReward

    local = LocalJudge(str(bundle), k=k, temperature=0.5, max_new_tokens=max_new_tokens, device="cpu")
    settings = RewardSettings(k=k)

    def inline(prompts, completions, **_):  # noqa: ANN001, ANN202
        groups, blank = plan(prompts, completions, settings)
        preds = local.judge_sync(instances(groups, settings)) if groups else []
        out = [settings.blank] * len(prompts)
        for g, p in zip(groups, preds):
            for i, r in zip(g.indices, mean_scores(p, settings.failed)):
                out[i] = r
        return out

    inline.__name__ = "spct_inline"
    t_inline = grpo_steps([inline], steps, root / "inline")
    t_async = grpo_steps([SpctReward(url, settings=settings)], steps, root / "async")
    after_first = lambda xs: xs[1:] or xs  # noqa: E731
    return {"steps": steps, "inline_step_s": [round(x, 3) for x in t_inline], "async_step_s": [round(x, 3) for x in t_async],
            "inline_mean_s": round(statistics.mean(after_first(t_inline)), 3),
            "async_mean_s": round(statistics.mean(after_first(t_async)), 3),
            "speed_async_over_inline": round(statistics.mean(after_first(t_inline)) / statistics.mean(after_first(t_async)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("-k", type=int, default=4)
    ap.add_argument("--items", type=int, default=2, help="judge items per call in the engine comparison")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--grpo-steps", type=int, default=4, help="0 skips the reward comparison")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    result: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_avg_start": os.getloadavg()},
        "versions": {p: metadata.version(p) for p in ("torch", "transformers", "trl", "kserve")},
        "model": args.model, "k": args.k, "max_new_tokens": args.max_new_tokens,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = make_bundle(args.model, root, args.max_new_tokens)
        srv = Server(bundle, root / "server.log")
        try:
            result["engine_vs_local"] = engine_overhead(srv.url, bundle, args.runs, args.k, args.items, args.max_new_tokens)
            print(json.dumps({"engine_vs_local": result["engine_vs_local"]}), file=sys.stderr)
            if args.grpo_steps:
                result["reward_async_vs_inline"] = reward_paths(srv.url, bundle, args.grpo_steps, args.k,
                                                                args.max_new_tokens, root)
        finally:
            result["server_exit_code"] = srv.stop()
    result["machine"]["load_avg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
