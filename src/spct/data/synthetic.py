"""The embedded default dataset: verifiable preference items, generated, never downloaded.

Each item asks a question with one checkable answer (arithmetic, unit conversion,
sorting, counting, string operations). One response is correct; the others make
a plausible mistake (off by one, wrong operator, swapped digits, partial sort, ...).
The ground truth stays in ``meta`` so a cold-start SFT can write template
critiques: ``kind``, ``answer``, ``params`` (the question's inputs) and
``response_meta`` (per response: its answer, whether it is correct, and why not).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spct.data.splits import check_split, side
from spct.types import Example, user

SOURCE = "verifiable"
KINDS = ("arithmetic", "unit_conversion", "sorting", "counting", "string_ops")
# Sub-kinds each of these categories draws from (one per item); ``modes=`` narrows them.
MODES = {"counting": ("letter", "vowels", "words"), "string_ops": ("reverse", "uppercase", "acronym")}
MAX_RESPONSES = 4
DEFAULT_ITEMS = 200
# ``split=`` partitions the question space by a hash of the question's inputs (its kind and
# parameters, not its wording, so "What is 3 + 4?" and "Compute 3 + 4." fall together; spct.data.splits).

_WORDS = (
    "strawberry banana planet river window garden pepper mirror orange silver yellow rabbit "
    "bottle candle pillow summer winter letter dinner forest button kitten puzzle rocket "
    "tomato wizard jungle marble violin harbor canyon meadow"
).split()
_ACRONYMS = (
    "portable network graphics", "central processing unit", "random access memory",
    "graphical user interface", "frequently asked questions", "as soon as possible",
    "world wide web", "read only memory", "do it yourself", "unidentified flying object",
)
# (unit, plural name, target unit, plural name, factor)
_UNITS = (
    ("km", "kilometres", "m", "metres", 1000),
    ("m", "metres", "cm", "centimetres", 100),
    ("cm", "centimetres", "mm", "millimetres", 10),
    ("kg", "kilograms", "g", "grams", 1000),
    ("L", "litres", "mL", "millilitres", 1000),
    ("h", "hours", "min", "minutes", 60),
    ("min", "minutes", "s", "seconds", 60),
    ("ft", "feet", "in", "inches", 12),
    ("day", "days", "h", "hours", 24),
)


@dataclass
class _Answer:
    answer: str
    working: str | None = None
    reason: str | None = None  # None for the correct answer


@dataclass
class _Item:
    question: str
    correct: _Answer
    mistakes: list[_Answer]
    params: dict = field(default_factory=dict)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3f}".rstrip("0")


def _arithmetic(rng: random.Random) -> _Item:
    op = rng.choice("+-×")
    if op == "×":
        a, b = rng.randint(3, 99), rng.randint(3, 19)
    else:
        a, b = rng.randint(12, 999), rng.randint(12, 999)
        if op == "-" and b > a:
            a, b = b, a
    calc = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "×": lambda x, y: x * y}
    c = calc[op](a, b)
    work = lambda o, v: f"{a} {o} {b} = {v}"  # noqa: E731
    wrong_op = {"+": "-", "-": "+", "×": "+"}[op]
    w = calc[wrong_op](a, b)
    mistakes = [
        _Answer(str(c + 1), work(op, c + 1), "off by one"),
        _Answer(str(c - 1), work(op, c - 1), "off by one"),
        _Answer(str(w), work(wrong_op, w), f"used {wrong_op} instead of {op}"),
        _Answer(str(c + 10), work(op, c + 10), "carry error in the tens digit"),
    ]
    s = str(c)
    if len(s) >= 2 and s[-1] != s[-2]:
        swapped = s[:-2] + s[-1] + s[-2]
        mistakes.insert(0, _Answer(swapped, work(op, swapped), "swapped the last two digits"))
    q = rng.choice(["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b}."])
    return _Item(q.format(a=a, op=op, b=b), _Answer(s, work(op, c)), mistakes, {"a": a, "b": b, "op": op})


def _unit_conversion(rng: random.Random) -> _Item:
    src, src_name, dst, dst_name, factor = rng.choice(_UNITS)
    v = rng.randint(2, 40) + rng.choice([0, 0, 0.5])
    c = v * factor
    wrong = factor * 10 if factor in (100, 1000, 10) else factor // 2
    mistakes = [
        _Answer(_num(v * wrong), f"{_num(v)} × {wrong} = {_num(v * wrong)}", f"used a factor of {wrong} instead of {factor}"),
        _Answer(_num(v / factor), f"{_num(v)} ÷ {factor} = {_num(v / factor)}", "divided instead of multiplying"),
        _Answer(_num(c + factor), f"{_num(v + 1)} × {factor} = {_num(c + factor)}", "converted one unit too many"),
        _Answer(_num(v), None, "did not convert the value"),
    ]
    q = rng.choice(["How many {dn} are in {v} {sn}?", "Convert {v} {sn} to {dn}."])
    working = f"1 {src} = {factor} {dst} and {_num(v)} × {factor} = {_num(c)}"
    params = {"value": v, "from": src, "to": dst, "factor": factor}
    return _Item(q.format(v=_num(v), sn=src_name, dn=dst_name), _Answer(_num(c), working), mistakes, params)


def _sorting(rng: random.Random) -> _Item:
    xs = rng.sample(range(1, 100), rng.randint(5, 7))
    desc = rng.random() < 0.3
    good = sorted(xs, reverse=desc)
    fmt = lambda v: ", ".join(map(str, v))  # noqa: E731
    k = rng.randrange(len(good) - 1)
    partial = good[:k] + [good[k + 1], good[k]] + good[k + 2:]
    drop = rng.randrange(len(good))
    mistakes = [
        _Answer(fmt(partial), None, f"{good[k]} and {good[k + 1]} are out of order"),
        _Answer(fmt(good[::-1]), None, "sorted in the wrong direction"),
        _Answer(fmt(good[:drop] + good[drop + 1:]), None, f"left out {good[drop]}"),
        _Answer(fmt(xs), None, "left the list unsorted"),
    ]
    order = "descending" if desc else "ascending"
    q = f"Sort these numbers in {order} order: {fmt(xs)}."
    return _Item(q, _Answer(fmt(good)), mistakes, {"items": xs, "order": order})


def _counting(rng: random.Random) -> _Item:
    mode = rng.choice(MODES["counting"])
    if mode == "letter":
        word = rng.choice(_WORDS)
        letter = rng.choice(sorted(set(word)))
        c = word.count(letter)
        other = next((ch for ch in sorted(set(word)) if word.count(ch) != c), None)
        q = f"How many times does the letter '{letter}' appear in the word '{word}'?"
        params = {"mode": mode, "text": word, "letter": letter}
        alt = [_Answer(str(word.count(other)), None, f"counted the letter '{other}' instead")] if other else []
        alt.append(_Answer(str(len(word)), None, "counted every letter of the word"))
    elif mode == "vowels":
        word = rng.choice(_WORDS)
        c = sum(ch in "aeiou" for ch in word)
        q = f"How many vowels (a, e, i, o, u) are in the word '{word}'?"
        params = {"mode": mode, "text": word}
        alt = [_Answer(str(len(word) - c), None, "counted the consonants instead")]
    else:
        words = rng.sample(_WORDS, rng.randint(4, 9))
        sentence = " ".join(words)
        c = len(words)
        q = f"How many words are in this sentence: '{sentence}'?"
        params = {"mode": mode, "text": sentence}
        alt = [_Answer(str(len(sentence.replace(" ", ""))), None, "counted letters instead of words")]
    mistakes = [_Answer(str(c + 1), None, "miscounted by one"), *alt, _Answer(str(max(c - 1, 0)), None, "miscounted by one")]
    return _Item(q, _Answer(str(c)), mistakes, params)


def _string_ops(rng: random.Random) -> _Item:
    mode = rng.choice(MODES["string_ops"])
    if mode == "reverse":
        s = rng.choice(_WORDS)
        good = s[::-1]
        k = rng.randrange(len(good) - 1)
        q = f"Reverse the word '{s}'."
        mistakes = [
            _Answer(good[:k] + good[k + 1] + good[k] + good[k + 2:], None, f"swapped the letters at positions {k + 1} and {k + 2}"),
            _Answer(good[:-1], None, "left out the last letter"),
            _Answer(s, None, "did not reverse the word"),
        ]
    elif mode == "uppercase":
        s = " ".join(rng.sample(_WORDS, 2))
        good = s.upper()
        k = rng.randrange(len(s))
        while s[k] == " ":
            k = rng.randrange(len(s))
        q = f"Write '{s}' in uppercase."
        mistakes = [
            _Answer(good[:k] + s[k] + good[k + 1:], None, f"left the letter '{s[k]}' in lowercase"),
            _Answer(s.title(), None, "capitalised only the first letter of each word"),
            _Answer(s, None, "did not change the case"),
        ]
    else:
        s = rng.choice(_ACRONYMS)
        words = s.split()
        good = "".join(w[0] for w in words).upper()
        q = f"Write the acronym of '{s}' (the first letter of each word, in capitals)."
        mistakes = [
            _Answer(good[:-1], None, "left out the last word's letter"),
            _Answer("".join(w[-1] for w in words).upper(), None, "took the last letter of each word"),
            _Answer(good.lower(), None, "did not use capitals"),
        ]
    quoted = [_Answer(f'"{m.answer}"', None, m.reason) for m in mistakes]
    return _Item(q, _Answer(f'"{good}"'), quoted, {"mode": mode, "text": s})


_GENERATORS: dict[str, Callable[[random.Random], _Item]] = {
    "arithmetic": _arithmetic,
    "unit_conversion": _unit_conversion,
    "sorting": _sorting,
    "counting": _counting,
    "string_ops": _string_ops,
}


def _say(ans: _Answer, rng: random.Random) -> str:
    if ans.working and rng.random() < 0.6:
        return rng.choice(["{w}, so the answer is {a}.", "Working it out: {w}. The answer is {a}."]).format(w=ans.working, a=ans.answer)
    return rng.choice(["The answer is {a}.", "Answer: {a}", "It is {a}."]).format(a=ans.answer)


def split_of(kind: str, params: dict) -> str:
    """``train`` or ``heldout``: a fixed function of an item's kind and inputs."""
    return side(json.dumps([kind, params], sort_keys=True, ensure_ascii=False))


def balanced_best(i: int, seed: int, n_responses: int) -> int:
    """The gold position of item ``i``: every block of ``n_responses`` consecutive items holds each
    position once (in a seeded order), so a set of whole blocks puts the best in every slot equally
    often and a judge that always names one slot scores exactly chance."""
    block = list(range(n_responses))
    random.Random(f"{SOURCE}:{seed}:best:{i // n_responses}").shuffle(block)
    return block[i % n_responses]


def _example(
    i: int, seed: int, kind: str, n_responses: int, modes: frozenset[str] | None = None, split: str = "all"
) -> Example:
    rng = random.Random(f"{SOURCE}:{seed}:{i}")
    while True:
        item = _GENERATORS[kind](rng)
        if modes and item.params.get("mode") not in modes:
            continue  # redrawn from the same stream, so item i stays a function of (seed, i, kind, modes)
        if split != "all" and split_of(kind, item.params) != split:
            continue
        seen = {item.correct.answer}
        wrong = []
        for m in item.mistakes:
            if m.answer not in seen and m.answer.strip('"').strip():
                seen.add(m.answer)
                wrong.append(m)
        if len(wrong) >= n_responses - 1:
            break  # otherwise draw a new question: this one has too few distinct mistakes
    wrong = rng.sample(wrong, n_responses - 1)
    best = balanced_best(i, seed, n_responses)
    answers = wrong[:best] + [item.correct] + wrong[best:]
    ex_id = f"{SOURCE}/{seed}/{i}" if split == "all" else f"{SOURCE}/{split}/{seed}/{i}"
    return Example(
        id=ex_id,
        source=SOURCE,
        category=kind,
        messages=[user(item.question)],
        responses=[_say(a, rng) for a in answers],
        best=best,
        labels=[1.0 if a is item.correct else 0.0 for a in answers],
        meta={
            "kind": kind,
            "question": item.question,
            "answer": item.correct.answer,
            "params": item.params,
            "response_meta": [{"answer": a.answer, "correct": a is item.correct, "reason": a.reason} for a in answers],
        },
    )


def generate_verifiable(
    n_items: int,
    seed: int = 0,
    n_responses: int = 2,
    categories: Sequence[str] | None = None,
    modes: Sequence[str] | None = None,
    split: str = "all",
) -> list[Example]:
    """``n_items`` verifiable items, categories in turn; item ``i`` depends only on (seed, i, kind).

    ``modes`` narrows categories that have sub-kinds (``counting``: letter, vowels, words;
    ``string_ops``: reverse, uppercase, acronym) to those named. ``split`` draws only questions
    of that part of the question space (:func:`split_of`): ``train`` and ``heldout`` never share
    a question. The gold position is balanced per block of ``n_responses`` items.
    """
    check_split(split)
    kinds = tuple(categories) if categories else KINDS
    unknown = [k for k in kinds if k not in _GENERATORS]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; choose from {', '.join(KINDS)}")
    wanted = frozenset(modes) if modes else None
    if wanted:
        bad = sorted(wanted - {m for k in kinds for m in MODES.get(k, ())})
        if bad or any(k not in MODES for k in kinds):
            raise ValueError(
                f"modes {sorted(wanted)} do not fit categories {list(kinds)}: "
                + ", ".join(f"{k}: {', '.join(v)}" for k, v in MODES.items())
            )
    if not 2 <= n_responses <= MAX_RESPONSES:
        raise ValueError(f"n_responses must be between 2 and {MAX_RESPONSES}, got {n_responses}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    return [_example(i, seed, kinds[i % len(kinds)], n_responses, wanted, split) for i in range(n_items)]


def correct_answer(example: Example) -> str:
    """The ground-truth answer of a generated item (as it appears in the correct response)."""
    try:
        return example.meta["answer"]
    except KeyError:
        raise ValueError(f"{example.id} is not a generated verifiable item (no meta['answer'])") from None
