"""The shared-prefix sampler vs the sampler before it, on the demo profile's evaluation.

    .venv/bin/python benchmarks/prefix_cache.py                       # demo profile: its model, items, sampling
    .venv/bin/python benchmarks/prefix_cache.py --limit 16 --runs 3   # the first 16 items only
    .venv/bin/python benchmarks/prefix_cache.py --model runs/demo/... # a trained GRM directory instead
    .venv/bin/python benchmarks/prefix_cache.py --fixed-length        # every critique exactly max_new_tokens

The workload is what ``spct.evaluate.harness.evaluate_dataset`` generates for the profile:
the greedy pass (every item in every rotation of its responses, temperature 0) and the
sampled pass (``max(eval.ks)`` seeded shuffles per item at the profile's temperature), each
one ``spct.grm.judge.judge`` call with the profile's ``max_new_tokens``, ``token_budget``
and seed. Both paths run the library's ``generate`` (same planning, seeds, trimming); only
the micro-batch runner differs:

* before: every distinct prompt left-padded and prefilled whole (the sampler until this
  change, kept here only for the comparison: the library has one sampler);
* now: ``spct.engine.sampler._run_batch``, the shared prefix (chat template + judge
  instruction) prefilled once per micro-batch, padding between prefix and suffix, and
  decoding in ``generate`` calls of ``DECODE_CHUNK`` steps with the rows that have stopped
  dropped between calls.

Each run times both paths in one process, interleaved call by call (greedy, sampled) with
the first path alternating, after an untimed warm-up of each. Greedy completions must be token-identical between the paths (checked
every run); sampled ones are seeded but may differ in the last bits of the logits.
The load average is printed before every timing: the 2-core machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any


def run_batch_before(
    model: Any,
    tokenizer: Any,
    rows: list[list[int]],
    gen_config: Any,
    decode_steps: int,
    synced: bool = False,
    cache_name: str = "past_key_values",
) -> list[list[int]]:
    """The micro-batch runner before the shared prefix: prefill each distinct prompt whole, left-padded."""
    import torch
    from transformers import StaticCache

    unique: dict[tuple[int, ...], int] = {}
    owner = [unique.setdefault(tuple(r), len(unique)) for r in rows]
    distinct = [list(k) for k in unique]
    width = max(max(len(r) for r in distinct), 2 if synced else 1)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in distinct], device=model.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in distinct], device=model.device)
    take = torch.tensor(owner, device=model.device)
    cache = None
    if width > 1:
        cache = StaticCache(config=model.config, max_cache_len=width + decode_steps)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        model(
            input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
            use_cache=True, logits_to_keep=1, **{cache_name: cache},
        )
        if len(distinct) != len(rows):
            cache.reorder_cache(take)
    out = model.generate(
        input_ids=ids[take], attention_mask=mask[take], generation_config=gen_config, synced_gpus=synced,
        **{cache_name: cache},
    )
    return out[:, width:].tolist()


@contextlib.contextmanager
def sampler_before() -> Iterator[None]:
    from spct.engine import sampler

    now = sampler._run_batch
    sampler._run_batch = run_batch_before
    try:
        yield
    finally:
        sampler._run_batch = now


def evaluation_calls(engine: Any, examples: list[Any], settings: Any) -> list[tuple[str, list[Any], Any]]:
    """The (name, items, params) of every judge() call evaluate_dataset makes (no meta RM)."""
    from spct.grm.judge import JudgeItem, rotations

    calls = []
    if settings.greedy:
        calls.append(("greedy", [JudgeItem(ex.messages, ex.responses, orders=rotations(ex.n)) for ex in examples],
                      settings.params(greedy=True)))
    kmax = max(settings.ks)
    calls.append((f"sampled k={kmax}", [JudgeItem(ex.messages, ex.responses, k=kmax) for ex in examples], settings.params()))
    return calls


def run_path(engine: Any, calls: list[tuple[str, list[Any], Any]]) -> tuple[float, float, float, int, list[list[list[int]]]]:
    """(seconds, of which in model.generate, process CPU seconds, generated tokens, completion ids per call)
    for the judge() calls.

    The time outside ``model.generate`` is the prompt prefill (plus planning and decoding text);
    inside it is the decode loop, which both paths share.
    """
    from spct.grm.judge import judge

    model, spent = engine.model, [0.0]
    real = model.generate

    def timed_generate(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            spent[0] += time.perf_counter() - t0

    model.generate = timed_generate
    try:
        t, cpu = time.perf_counter(), time.process_time()
        ids = []
        for _, items, params in calls:
            judged = judge(engine, items, params)
            ids.append([s.completion_ids for j in judged for s in j.samples])
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        del model.generate
    return secs, spent[0], cpu, sum(len(x) for call in ids for x in call), ids


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="demo", help="profile whose model, eval data and sampling are used")
    ap.add_argument("--model", default=None, help="model spec instead of the profile's (e.g. a trained GRM directory)")
    ap.add_argument("--limit", type=int, default=None, help="first N eval items (default: the profile's eval.limit)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: torch's, 2 here); 1 makes CPU seconds a load-proof measure of work")
    ap.add_argument("--chunk", type=int, default=None,
                    help="decode steps per generate() call on the new path (sampler.DECODE_CHUNK); at least "
                         "max_new_tokens keeps every row to the end, which isolates the shared prefix's share")
    ap.add_argument("--fixed-length", action="store_true",
                    help="min_new_tokens = max_new_tokens: every critique decodes the same length on both paths")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    from spct.config import load_profile
    from spct.data.load import load
    from spct.engine import Engine
    from spct.engine import sampler
    from spct.engine.sampler import common_prefix
    from spct.evaluate.harness import EvalSettings, take
    from spct.grm.prompt import build_chat, special_strings

    print(load_line(), "(at start)")
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = load_profile(args.profile)
    settings = EvalSettings.from_profile(profile)
    if args.limit is not None:
        settings.limit = args.limit
    if args.fixed_length:
        settings.sampling = replace(settings.sampling, min_new_tokens=settings.sampling.max_new_tokens)
    if args.chunk:
        sampler.DECODE_CHUNK = args.chunk
    spec = args.model or profile.model.spec
    engine = Engine.load(spec, dtype=profile.model.dtype, device=profile.model.device)
    examples = []
    for path in profile.eval.data:
        examples += take(load(path).examples, settings.limit)
    calls = evaluation_calls(engine, examples, settings)

    specials = special_strings(engine.tokenizer)
    for name, items, params in calls:
        prompts = [engine.render(build_chat(it.messages, [it.responses[i] for i in it.order(j, params.seed)], None, specials))
                   for it in items for j in range(it.k)]
        enc = [engine.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        lengths = [len(e) for e in enc]
        print(f"{name}: {len(prompts)} prompts ({len(set(map(tuple, enc)))} distinct), prompt tokens "
              f"{min(lengths)}-{max(lengths)} (mean {sum(lengths) / len(lengths):.0f}), shared prefix "
              f"{common_prefix(enc)} tokens; temperature {params.temperature}, max_new_tokens {params.max_new_tokens}, "
              f"min_new_tokens {params.min_new_tokens}, token_budget {params.token_budget}, seed {params.seed}")
    print(f"profile={args.profile} model={spec} items={len(examples)} runs={args.runs} chunk={sampler.DECODE_CHUNK} "
          f"torch={torch.__version__} "
          f"transformers={transformers.__version__} threads={torch.get_num_threads()} cpus={os.cpu_count()} "
          f"{platform.processor() or platform.machine()}")

    # Warm-up: the first call through each path, at its full batch shapes but 2 new tokens, untimed:
    # the first forward at a new shape pays for allocations and kernel set-up (2.3x slower on the tiny model).
    warm = [(n, items, replace(p, max_new_tokens=2, min_new_tokens=0)) for n, items, p in calls[:1]]
    with sampler_before():
        run_path(engine, warm)
    run_path(engine, warm)

    ratios, cpu_ratios, rows = [], [], []
    for r in range(args.runs):
        # Interleaved call by call, the first path alternating, so load from other jobs falls on both alike.
        secs = {"before": 0.0, "now": 0.0}
        decode = {"before": 0.0, "now": 0.0}
        cpu = {"before": 0.0, "now": 0.0}
        tokens = {"before": 0, "now": 0}
        ids: dict[str, list[Any]] = {"before": [], "now": []}
        loads = []
        for c, call in enumerate(calls):
            for path in (["before", "now"] if (r + c) % 2 == 0 else ["now", "before"]):
                loads.append(os.getloadavg()[0])
                with sampler_before() if path == "before" else contextlib.nullcontext():
                    t, d, u, n, out = run_path(engine, [call])
                secs[path] += t
                cpu[path] += u
                decode[path] += d
                tokens[path] += n
                ids[path] += out
        for path in ("before", "now"):
            print(f"run {r + 1} {path:6s}: {secs[path]:7.1f} s (prefill {secs[path] - decode[path]:6.1f} s, decode "
                  f"{decode[path]:6.1f} s)  {tokens[path]} tokens  {tokens[path] / secs[path]:6.1f} tok/s  "
                  f"{cpu[path]:7.1f} CPU s", flush=True)
        (tb, nb, ib), (tp, np_, ip) = [(secs[p], tokens[p], ids[p]) for p in ("before", "now")]
        greedy_same = ib[0] == ip[0] if settings.greedy else None
        sampled_same = sum(a == b for a, b in zip(ib[-1], ip[-1]))
        ratio, cpu_ratio = tb / tp, cpu["before"] / cpu["now"]
        ratios.append(ratio)
        cpu_ratios.append(cpu_ratio)
        rows.append((r + 1, tb, tp, nb, np_, ratio, cpu_ratio, greedy_same, sampled_same, len(ib[-1]), min(loads), max(loads)))
        print(f"run {r + 1}: before/now {ratio:.2f}x wall time ({(np_ / tp) / (nb / tb):.2f}x tokens/s, "
              f"{cpu_ratio:.2f}x CPU time); greedy "
              f"identical: {greedy_same}; sampled identical: {sampled_same}/{len(ib[-1])}; 1-min load average "
              f"{min(loads):.2f}-{max(loads):.2f} at the starts", flush=True)
        if greedy_same is False:
            raise SystemExit("greedy completions differ between the two paths")

    print(load_line(), "(at end)")
    print(f"before/now wall-time ratio over {len(ratios)} runs: min {min(ratios):.2f}x, "
          f"median {statistics.median(ratios):.2f}x, max {max(ratios):.2f}x; CPU-time ratio min {min(cpu_ratios):.2f}x, "
          f"median {statistics.median(cpu_ratios):.2f}x, max {max(cpu_ratios):.2f}x")
    print("| run | load average | before s | now s | tokens before / now | wall ratio | CPU ratio | greedy identical "
          "| sampled identical |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|")
    for run, tb, tp, nb, np_, ratio, cr, gs, ss, n, lo, hi in rows:
        print(f"| {run} | {lo:.2f}-{hi:.2f} | {tb:.1f} | {tp:.1f} | {nb} / {np_} | {ratio:.2f}x | {cr:.2f}x | {gs} | {ss}/{n} |")


if __name__ == "__main__":
    main()
