"""One SFT step with the LM head over every position vs over the loss window only.

The cold start and RFT train on judge prompts (~255 tokens on the demo) followed by critiques
(~90 tokens): only the critique's positions carry loss, so projecting the prompt's positions onto
the vocabulary is wasted work. Both ways run forward + backward on the same batch (the demo
profile's cold-start sequences, LoRA as the profile sets it), interleaved run by run so both see
the same background load; the losses must agree (checked). Prints one JSON object: the machine,
the load average at start and end, every run's seconds and the ratio of the medians.

    .venv/bin/python benchmarks/sft_step.py --profile demo --batch 4 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import torch

    from spct.config import load_profile
    from spct.data import load
    from spct.train import runtime
    from spct.train.coldstart import coldstart_data
    from spct.train.sft import collate, forward_loss, loss_window, sft_loss

    load0 = os.getloadavg()
    prof = load_profile(args.profile)
    cs = prof.coldstart
    model, tok, device = runtime.load_for_training(prof.model.spec, prof.model.dtype, "cpu", prof.lora, prof.train)
    data = coldstart_data(tok, load(cs.data).examples[: args.batch], perms=1, seed=0, template=cs.template,
                          verdict_weight=cs.verdict_weight)  # fmt: skip
    batch = collate(data[: args.batch], tok.pad_token_id)

    def full() -> torch.Tensor:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return sft_loss(logits, batch["labels"], batch.get("weights"))[0]

    def window() -> torch.Tensor:
        return forward_loss(model, batch)[0]

    model.train()
    times: dict[str, list[float]] = {"full": [], "window": []}
    losses: dict[str, float] = {}
    for run in range(args.runs + 1):  # run 0 warms both up
        for name in ("full", "window") if run % 2 else ("window", "full"):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            loss = {"full": full, "window": window}[name]()
            loss.backward()
            dt = time.perf_counter() - t0
            losses[name] = loss.item()
            if run:
                times[name].append(round(dt, 3))
    assert abs(losses["full"] - losses["window"]) < 1e-4 * max(1.0, abs(losses["full"])), losses
    T = batch["input_ids"].size(1)
    print(json.dumps({
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "profile": args.profile, "batch": args.batch, "sequence_length": T, "window": loss_window(batch["labels"]),
        "load_average_start": round(load0[0], 2), "load_average_end": round(os.getloadavg()[0], 2),
        "seconds": times, "loss": losses,
        "full_over_window_median": round(statistics.median(times["full"]) / statistics.median(times["window"]), 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
