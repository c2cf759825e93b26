"""Cold start: SFT on template-built critiques of the embedded verifiable dataset.

NOT part of the SPCT paper. The paper starts RFT from a pretrained 27B model that
already follows the judge format; the small bases available here (the random
``tiny`` Llama, SmolLM2-135M-Instruct) never write ``\\boxed{...}`` on their own,
so RFT would have nothing to keep and GRPO nothing to reinforce. A short SFT on
critiques written from the dataset's ground truth (``meta.response_meta``)
teaches the format; RFT and GRPO then follow the paper's recipe unchanged.
Real runs on a capable base skip this stage.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spct.grm.prompt import render_judge, special_strings
from spct.grm.rules import permutation, sample_rng
from spct.train.sft import SFTExample, encode_text
from spct.types import Example

CRITERIA = (
    "Specific Criteria:\n"
    "- Correctness (70%): the final answer must be right.\n"
    "- Clarity (30%): the answer is stated plainly."
)


# One principle line per kind (``string_ops`` and ``counting`` per sub-kind) for the short template:
# what the item's checkable answer must satisfy, as a judge would state it for this question.
PRINCIPLES = {
    "arithmetic": "the exact result of the calculation",
    "unit_conversion": "the value converted with the right factor",
    "sorting": "every number of the list, in {order} order",
    "counting": "the exact count",
    "letter": "the exact number of times the letter appears",
    "vowels": "the exact number of vowels",
    "words": "the exact number of words",
    "uppercase": "every letter in uppercase",
    "acronym": "the first letter of each word, in capitals",
    "reverse": "the letters in reverse order",
}


# One analysis line per response, (right, wrong) wording per template. ``reference`` puts the
# judge's own answer beside each response's, so the verdict follows the two strings it compares.
ANALYSIS = {
    "full": ("Response {pos} answers {answer}, which is correct.", "Response {pos} answers {answer}, which is wrong: {reason}."),
    "short": ("Response {pos}: {answer}, correct.", "Response {pos}: {answer}, wrong ({reason})."),
    "reference": ("Response {pos}: {answer} vs {gold}: correct.", "Response {pos}: {answer} vs {gold}: wrong."),
}

def principle(ex: Example) -> str:
    """The short template's one principle line for ``ex``."""
    params = ex.meta.get("params") or {}
    kind = ex.meta.get("kind", "")
    text = PRINCIPLES.get(params.get("mode", ""), PRINCIPLES.get(kind, "the right final answer"))
    return f"- Correctness (100%): {text.format(order=params.get('order', 'the asked'))}."


def template_critique(
    ex: Example, perm: Sequence[int], rng: random.Random, template: str = "full"
) -> tuple[str, list[tuple[int, int]]]:
    """A critique in the GRM format for ``ex`` with its responses shown in ``perm`` order, and the
    character spans of its decisions (each response's correct/wrong word and the scores in the box).

    Correct responses score 8-10, wrong ones 1-4, so the true best is always strictly highest.
    ``template="short"``: one principle line for the item's kind and one short line per response
    (``Response 2: "PN", wrong (left out the last word's letter).``), about half the tokens of ``full``.
    ``template="reference"``: the short one plus the judge's own answer, set beside each response's
    (``Reference answer: "PNG".`` ... ``Response 2: "PN" vs "PNG": wrong.``).
    """
    meta = ex.meta.get("response_meta")
    if not meta or len(meta) != ex.n:
        raise ValueError(f"{ex.id}: cold start needs meta.response_meta for every response (a builtin:verifiable item)")
    if template not in ANALYSIS:
        raise ValueError(f"unknown template {template!r} ({', '.join(ANALYSIS)})")
    right, wrong = ANALYSIS[template]
    gold = ex.meta.get("answer", "")
    criteria = CRITERIA if template == "full" else f"Specific Criteria:\n{principle(ex)}"
    text, spans, scores = f"{criteria}\nAnalysis:\n", [], []
    if template == "reference":
        # The judge's own answer first: part of the analysis, not a weighted principle.
        text += f"Reference answer: {gold}.\n"
    for pos, i in enumerate(perm, start=1):
        m = meta[i]
        line = (right if m["correct"] else wrong).format(pos=pos, answer=m["answer"], reason=m["reason"], gold=gold)
        word = "correct" if m["correct"] else "wrong"
        at = line.index(word, line.index(m["answer"]) + len(m["answer"]))  # after the answer it judges
        spans.append((len(text) + at, len(text) + at + len(word)))
        text += line + "\n"
        scores.append(rng.randint(8, 10) if m["correct"] else rng.randint(1, 4))
    text += "Scores: \\boxed{"
    spans.append((len(text), len(text) + len(", ".join(map(str, scores)))))
    return text + ", ".join(map(str, scores)) + "}", spans


def presentation(n: int, seed: int, key: str, j: int, orders: str = "random") -> tuple[list[int], random.Random]:
    """The order of presentation ``j`` of an item and the generator for its critique's scores.

    ``random``: a seeded shuffle per presentation. ``rotations``: rotation ``j mod n`` of a seeded
    base order (a new base every n presentations), so n presentations show each response once in
    every slot and the gold position carries no signal.
    """
    if orders == "random":
        rng = sample_rng(seed, key, j)
        return permutation(n, rng), rng
    if orders != "rotations":
        raise ValueError(f"unknown orders {orders!r} (random or rotations)")
    base = permutation(n, sample_rng(seed, key, -1 - j // n))
    r = j % n
    return base[r:] + base[:r], sample_rng(seed, key, j)


def coldstart_data(
    tokenizer: Any, examples: Sequence[Example], perms: int, seed: int, *, orders: str = "random", template: str = "full",
    verdict_weight: float = 1.0,
) -> list[SFTExample]:
    """``perms`` presentations per item (see :func:`presentation`), each paired with its template critique;
    the critique's decision tokens weigh ``verdict_weight`` in the loss, its other tokens 1."""
    out = []
    specials = special_strings(tokenizer)
    for ex in examples:
        for j in range(perms):
            perm, rng = presentation(ex.n, seed, f"coldstart:{ex.id}", j, orders)
            prompt = render_judge(tokenizer, ex.messages, [ex.responses[i] for i in perm], specials=specials)
            text, spans = template_critique(ex, perm, rng, template)
            out.append(encode_text(tokenizer, prompt, text, spans, verdict_weight))
    return out


def run_coldstart(
    profile: Any, out_dir: Path, *, logger: Any, resume: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Load ``profile.model``, SFT it on template critiques, write ``out_dir/model``."""
    from spct.data import load
    from spct.train import runtime
    from spct.train.sft import train_sft

    cfg = profile.coldstart
    examples = load(cfg.data).examples
    model, tokenizer, device = runtime.load_for_training(
        profile.model.spec, profile.model.dtype, profile.model.device, profile.lora, profile.train
    )
    data = coldstart_data(tokenizer, examples, cfg.perms, profile.train.seed, orders=cfg.orders, template=cfg.template,
                          verdict_weight=cfg.verdict_weight)
    kept = [d for d in data if len(d) <= cfg.max_length]
    summary = train_sft(
        model, tokenizer, kept, stage="coldstart", steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size,
        micro_batch_size=cfg.micro_batch_size, train=profile.train, lora=profile.lora, out_dir=out_dir,
        device=device, logger=logger, config=profile.model_dump(mode="json"), resume=resume, progress=progress,
    )  # fmt: skip
    summary.update(items=len(examples), too_long=len(data) - len(kept))
    return summary
