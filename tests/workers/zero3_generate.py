"""One rank of tests/test_engine_zero3.py: greedy generation from a ZeRO-3 partitioned tiny model.

Each rank holds a different number of prompts (so a different number of micro-batches)
and a different ``max_new_tokens`` (so one rank's generate() ends first); the result
must equal greedy generation from the same weights unpartitioned.
"""

import json
import os
import sys

import torch

from spct.config import load_profile
from spct.engine import load_model
from spct.engine.sampler import SamplingParams, generate, zero3_world
from spct.train import runtime

rank, out = int(os.environ["RANK"]), sys.argv[1]
torch.manual_seed(0)
model, tok = load_model("tiny", device="cpu")
prompts = [["What is 2+2?"], ["Reverse 'stone'.", "Sort 3, 1, 2.", "Name a colour of the sky on a clear day."]][rank]
rendered = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
# token_budget makes rank 1 run one micro-batch per prompt; rank 0 stops 16 tokens earlier.
params = SamplingParams(temperature=0.0, max_new_tokens=[8, 24][rank], token_budget=64)
expected = [g[0].completion_ids for g in generate(model, tok, rendered, params)]

import deepspeed  # noqa: E402

# A CPU-only test: skip the JIT build of DeepSpeed's shared-memory allreduce op (minutes).
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
cfg = load_profile("tiny", ["train.zero_stage=3", "train.warmup_steps=0"]).train
rt = runtime.initialize(model, cfg, lr=1e-4, micro_batch=1, grad_accum=1, device=torch.device("cpu"))
assert zero3_world(rt.module) == 2, "the model is not ZeRO-3 partitioned across 2 ranks"
got = [g[0].completion_ids for g in generate(rt.module, tok, rendered, params)]

# GRPO's rollout path: the whole model gathered once, partitioning hooks off, then both restored.
from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus  # noqa: E402

big = [p for p in rt.module.parameters() if p.ds_numel > 1000 and not getattr(p, "ds_persist", False)]
assert big and all(p.ds_status == ZeroParamStatus.NOT_AVAILABLE for p in big), "expected partitioned weights"
with runtime.generation_weights(rt) as policy:
    gathered = all(p.ds_status == ZeroParamStatus.AVAILABLE and p.numel() == p.ds_numel for p in big)
    got_gathered = [g[0].completion_ids for g in generate(policy, tok, rendered, params)]
repartitioned = all(p.ds_status == ZeroParamStatus.NOT_AVAILABLE for p in big)
# The hooks are back: a training step runs and updates the shards.
before = [p.ds_tensor.clone() for p in big]
batch = tok(rendered[:1], return_tensors="pt")
rt.module.train()
loss = rt.engine(input_ids=batch["input_ids"], labels=batch["input_ids"]).loss
rt.backward(loss)
rt.step()
trained = any(not torch.equal(b, p.ds_tensor) for b, p in zip(before, big))
json.dump({"rank": rank, "expected": expected, "got": got, "got_gathered": got_gathered, "gathered": gathered,
           "repartitioned": repartitioned, "trained": trained, "loss": float(loss)}, open(out, "w"))
