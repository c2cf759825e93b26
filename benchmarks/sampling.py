"""Batched k-sample generation vs a naive loop of single generations.

    .venv/bin/python benchmarks/sampling.py                 # demo model, 4 prompts x k=8, 64 new tokens
    .venv/bin/python benchmarks/sampling.py --model tiny --max-new-tokens 16

Both paths generate exactly ``max_new_tokens`` per sample (``min_new_tokens`` is
set to the same value on both, so EOS cannot end a sample early) from the same
judge prompts built with ``spct.grm.prompt`` on RM-Bench chat items. The naive
path calls ``generate`` once per sample (batch 1, one prompt prefill each); the
batched path calls it once for all prompts x k.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "rm-bench" / "chat.json"

# Used when the RM-Bench file is not there: a few realistic pairwise items.
FALLBACK = [
    ("What are different drawers I should have for clothes?",
     "Have drawers for underwear and socks, t-shirts, trousers and skirts, sweaters, sportswear and accessories. "
     "Fold items vertically so you can see them all, and use dividers for small things.",
     "You should have a drawer for shoes, a drawer for coats and a drawer for hats; clothes are best kept on the floor."),
    ("How do I reverse a list in Python?",
     "Use `my_list.reverse()` to reverse in place, or `my_list[::-1]` / `list(reversed(my_list))` for a new list.",
     "Python lists cannot be reversed; you have to copy every element by hand into a new array."),
    ("Why is the sky blue?",
     "Sunlight is scattered by air molecules; shorter blue wavelengths scatter much more than red (Rayleigh "
     "scattering), so blue light reaches our eyes from every direction of the sky.",
     "The sky is blue because it reflects the colour of the oceans, which cover most of the Earth."),
    ("Give me three tips to sleep better.",
     "Keep a regular schedule, avoid screens and caffeine in the evening, and keep the bedroom dark, quiet and cool.",
     "Drink a strong coffee before bed, scroll your phone in the dark, and change your bedtime every night."),
]


def judge_prompts(tokenizer, n_prompts: int, data: Path) -> list[str]:
    from spct.grm.prompt import build_chat, render
    from spct.types import user

    if data.is_file():
        items = json.loads(data.read_text())[:n_prompts]
        # Detailed-plain chosen vs rejected: realistic judge prompt lengths.
        triples = [(it["prompt"], it["chosen"][1], it["rejected"][1]) for it in items]
    else:
        triples = FALLBACK[:n_prompts]
    return [render(tokenizer, build_chat([user(q)], [a, b])) for q, a, b in triples]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo", help="model spec (demo | tiny | a local dir | a .gguf)")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("-k", type=int, default=8, help="samples per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--token-budget", type=int, default=65536)
    ap.add_argument("--data", type=Path, default=DATA, help="RM-Bench chat.json (fallback items if absent)")
    ap.add_argument("--skip-naive", action="store_true", help="only time the batched path")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    from spct.engine import SamplingParams, generate, load_model

    model, tok = load_model(args.model)
    prompts = judge_prompts(tok, args.prompts, args.data)
    lengths = [len(tok(p, add_special_tokens=False).input_ids) for p in prompts]
    m = args.max_new_tokens
    params = SamplingParams(temperature=0.5, max_new_tokens=m, min_new_tokens=m, token_budget=args.token_budget)
    print(f"model={args.model} prompts={len(prompts)} prompt_tokens={lengths} k={args.k} new_tokens={m} "
          f"budget={args.token_budget} torch={torch.__version__} transformers={transformers.__version__} "
          f"threads={torch.get_num_threads()} cpus={os.cpu_count()} {platform.processor() or platform.machine()}")
    print("fairness: min_new_tokens = max_new_tokens on both paths, so every sample has exactly "
          f"{m} generated tokens; tokens counted from the returned completion_ids")

    generate(model, tok, prompts[:1], SamplingParams(temperature=0.5, max_new_tokens=2))  # warm-up

    t = time.perf_counter()
    batched = generate(model, tok, prompts, params, n=args.k)
    tb = time.perf_counter() - t
    nb = sum(g.completion_tokens for gs in batched for g in gs)
    print(f"batched: {tb:8.1f} s  {nb} tokens  {nb / tb:7.1f} tok/s  ({len(prompts)} x k={args.k} in one call)  "
          f"load avg {os.getloadavg()[0]:.1f}")
    if args.skip_naive:
        return

    t = time.perf_counter()
    nn = 0
    for p in prompts:
        for j in range(args.k):
            (g,) = generate(model, tok, [p], SamplingParams(
                temperature=0.5, max_new_tokens=m, min_new_tokens=m, seed=j, token_budget=args.token_budget))[0]
            nn += g.completion_tokens
    tn = time.perf_counter() - t
    print(f"naive:   {tn:8.1f} s  {nn} tokens  {nn / tn:7.1f} tok/s  (one generate per sample, batch 1)  "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"speed-up batched/naive: {(nb / tb) / (nn / tn):.2f}x tokens/s")


if __name__ == "__main__":
    main()
