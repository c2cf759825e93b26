"""GRPO rollouts under ZeRO-3: per-layer gathers at every decoded token vs the whole policy gathered once.

Two ranks (gloo, one thread each) hold a ZeRO-3 partitioned model and decode the same judge
prompts both ways, interleaved run by run so both see the same background load:

- ``per_layer``: the partitioned module as DeepSpeed leaves it (each forward all-gathers
  every layer's shards and frees them again: one full-model gather per decoded token);
- ``gathered``: inside ``spct.train.runtime.generation_weights`` (one gather per rollout).

Greedy tokens must be identical both ways (checked). Prints one JSON object: the machine,
the load average at start and end, every run's seconds and the ratio of the medians.

    .venv/bin/python benchmarks/zero3_rollout.py --model demo --prompts 4 --max-new-tokens 64 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(args: argparse.Namespace) -> None:
    import deepspeed
    import torch

    from spct.engine import load_model
    from spct.engine.sampler import SamplingParams, generate
    from spct.grm.prompt import build_chat, render
    from spct.train import runtime
    from spct.train.config import TrainConfig
    from spct.types import user

    torch.manual_seed(0)
    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    model, tok = load_model(args.model, device="cpu")
    questions = [("Write 'stone river' in uppercase.", '"STONE RIVER"', '"Stone River"'),
                 ("Write the acronym of 'read only memory'.", '"ROM"', '"RO"'),
                 ("What is 17 + 25?", "42", "43"), ("Reverse the word 'lamp'.", "pmal", "plam")]
    prompts = [render(tok, build_chat([user(q)], [a, b])) for q, a, b in (questions * 8)[: args.prompts]]
    params = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens, min_new_tokens=args.max_new_tokens)
    rt = runtime.initialize(model, TrainConfig(zero_stage=3), lr=1e-5, micro_batch=1, grad_accum=1, device=torch.device("cpu"))
    rt.module.eval()
    times: dict[str, list[float]] = {"per_layer": [], "gathered": []}
    tokens: dict[str, list] = {}
    for run in range(args.runs + 1):  # run 0 warms both paths up
        for mode in ("per_layer", "gathered") if run % 2 else ("gathered", "per_layer"):
            torch.distributed.barrier()
            t0 = time.perf_counter()
            with runtime.generation_weights(rt, gather=mode == "gathered") as policy:
                out = generate(policy, tok, prompts, params)
            dt = time.perf_counter() - t0
            if run:
                times[mode].append(round(dt, 3))
            tokens[mode] = [g[0].completion_ids for g in out]
    same = tokens["per_layer"] == tokens["gathered"]
    Path(args.out).write_text(json.dumps({"times": times, "same_tokens": same,
                                          "new_tokens": sum(len(t) for t in tokens["gathered"])}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for rank in range(2):
            env = os.environ | {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                                "MASTER_PORT": port, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
            cmd = [sys.executable, __file__, "--worker", "--out", f"{tmp}/rank{rank}.json", "--model", args.model,
                   "--prompts", str(args.prompts), "--max-new-tokens", str(args.max_new_tokens), "--runs", str(args.runs)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        logs = [p.communicate()[0] for p in procs]
        for p, log in zip(procs, logs):
            if p.returncode:
                sys.exit(f"a rank failed:\n{log[-3000:]}")
        ranks = [json.loads(Path(f"{tmp}/rank{r}.json").read_text()) for r in range(2)]
    # A rollout ends when the slower rank ends.
    t = {m: [max(a, b) for a, b in zip(ranks[0]["times"][m], ranks[1]["times"][m])] for m in ("per_layer", "gathered")}
    med = {m: statistics.median(v) for m, v in t.items()}
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "load_avg_start": load_start, "load_avg_end": os.getloadavg(), "ranks": 2,
                    "threads_per_rank": 1},
        "model": args.model, "prompts_per_rank": args.prompts, "new_tokens_per_prompt": args.max_new_tokens,
        "seconds": t, "median_s": med, "speedup_gathered": round(med["per_layer"] / med["gathered"], 2),
        "same_tokens": all(r["same_tokens"] for r in ranks),
    }, indent=2))


if __name__ == "__main__":
    main()
