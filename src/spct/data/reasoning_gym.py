"""reasoning-gym tasks as preference items whose wrong answers a surface check cannot tell.

Each item is one reasoning-gym question (``reasoning_gym.create_dataset``, configured through
the task's curriculum at a given level) with its gold answer and wrong candidates. The task's
own ``score_answer`` is the judge of truth: the gold must score exactly 1.0, and a candidate is
kept only if it scores below 1.0 *and* differs from the gold after normalisation (reasoning-gym
gives partial credit, and some scorers accept a prefix, a containing string or a near value).

Wrong candidates are built to look like the gold: the same format and case, the same length
(numbers, single words) or within a few characters (lists, sentences), and the same response
wording. They come from three families, recorded per response (``response_meta[k]["mistake"]``)
and per item (``meta["mistake"]``) so reports can break accuracy down by mistake:

* ``natural:*``: a mistake the task's metadata makes natural (the word left unreversed, the
  list left unsorted, the animals counted instead of their legs, ...);
* ``perturb:*``: a one-step edit of the gold (a number off by one, one digit changed or two
  swapped, two adjacent letters, words or items swapped, one word replaced by another);
* ``sibling``: the gold answer of another question of the same task and split, of the same
  shape (digit count, word or item count) and length.

Where answers recur (bit counts, letter counts, small GCDs) an answer's value would still tell:
the gold is the common value, the mistake a rarer one. A Metropolis-Hastings step keeps each
(gold, mistake) pair only as often as its mirror image, so every value is as common among the
wrong responses as among the right ones (:meth:`_Stream._accept`). Mistakes a response-only
classifier still spotted were measured and removed (see the notes by each task and
``benchmarks/surface_baselines.py``).

``split`` partitions questions by a hash of the task name and the normalised question, so no
seed, level or sample size puts one input in both ``train`` and ``heldout``; held-out items are
one per question. Item ``j`` of a task's stream depends only on (task, seed, level, split, j),
so a larger ``n`` extends a smaller one. reasoning-gym is imported on first use (~2 s).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from spct.data.dedup import normalise
from spct.data.spec import integer, options
from spct.data.splits import check_split, side
from spct.types import Example, user

SOURCE = "reasoning-gym"
PREFIX = "reasoning-gym:"
MAX_RESPONSES = 4
DEFAULT_ITEMS = 200
# One wording for every candidate of every task: the answer itself is the only difference.
RESPONSE = "The answer is: {}"
POOL = 300  # gold answers per (task, split): the siblings, and the answers' frequencies
PSEUDO_COUNT = 0.5  # an answer the pool never holds counts this much
_SIZE = 2**62  # reasoning-gym's virtual dataset size: only iteration reads it


@dataclass(frozen=True)
class Candidate:
    answer: str
    mistake: str  # "natural:...", "perturb:..." or "sibling"
    reason: str  # one line a template critique can quote


Natural = Callable[[dict, random.Random], list[Candidate]]


@dataclass(frozen=True)
class Task:
    name: str
    shape: str  # int | digits | word | words | list: how the answer is written
    natural: Natural
    step: int = 1  # a number answer's one-step slip (0: none, where it would flip a telling parity)
    unit: str = ""  # what a list's items are called in reasons ("word", "item", "letter")


# ------------------------------------------------------------------ natural mistakes per task


def _spell_backward(e: dict, rng: random.Random) -> list[Candidate]:
    return [Candidate(e["metadata"]["word"], "natural:unreversed", "the word is not reversed")]


def _word_sorting(e: dict, rng: random.Random) -> list[Candidate]:
    md = e["metadata"]
    words, gold = md["transformed_words"], md["sorted_words"]
    desc = md["direction"] == "descending"
    return [
        Candidate(", ".join(words), "natural:unsorted", "the words are left in their given order"),
        Candidate(", ".join(reversed(gold)), "natural:wrong_direction", "sorted in the opposite direction"),
        Candidate(", ".join(sorted(words, key=lambda w: (w.casefold(), w), reverse=desc)), "natural:ignored_case",
                  "sorted alphabetically ignoring case, not by ASCII code"),
    ]


def _caesar_cipher(e: dict, rng: random.Random) -> list[Candidate]:
    # The undecrypted text and a decryption off by one shift are the natural mistakes, but neither
    # is English: a response-only classifier picked the gold over them 98-100% of the time.
    return []


def _letter_jumble(e: dict, rng: random.Random) -> list[Candidate]:
    # The scrambled words (all, or one left over) are the natural mistakes, but a scrambled word is
    # not a word: a response-only classifier picked the gold over them 75-81% of the time.
    return []


def _chain_sum(e: dict, rng: random.Random) -> list[Candidate]:
    toks = e["metadata"]["expression"].split()
    ops = [k for k in range(1, len(toks), 2)]
    k = rng.choice(ops)
    flipped = toks[:k] + ["+" if toks[k] == "-" else "-"] + toks[k + 1:]
    value = int(toks[0]) + sum(int(b) if o == "+" else -int(b) for o, b in zip(flipped[1::2], flipped[2::2]))
    return [Candidate(str(value), "natural:sign_error", f"applied {toks[k]} {toks[k + 1]} the wrong way")]


def _products(e: dict, rng: random.Random) -> list[Candidate]:
    terms = [int(t) for t in e["metadata"]["expression"].split(" * ")]
    return [Candidate(str(sum(terms)), "natural:added", "added the numbers instead of multiplying them")]


def _count_bits(e: dict, rng: random.Random) -> list[Candidate]:
    b = e["metadata"]["binary"]
    # Not the binary length: it is never below the gold, and a classifier learned that (95%).
    return [Candidate(str(b.count("0")), "natural:zero_bits", "counted the 0 bits")]


def _base_conversion(e: dict, rng: random.Random) -> list[Candidate]:
    md = e["metadata"]
    # Not the decimal value: its digits run past a small target base's, a tell (80%).
    return [
        Candidate(md["target_repr"][::-1], "natural:reversed_digits", "wrote the remainders' digits in reverse order"),
        Candidate(md["source_repr"], "natural:unconverted", "copied the number without converting it"),
    ]


_LEGS_NEAR = {0: 2, 2: 4, 4: 2, 5: 4, 6: 4, 8: 6, 10: 8, 14: 10}  # a plausible wrong leg count per true one


def _leg_counting(e: dict, rng: random.Random) -> list[Candidate]:
    from reasoning_gym.arithmetic.leg_counting import ANIMALS

    animals: dict[str, int] = e["metadata"]["animals"]
    total = int(e["answer"])
    name = rng.choice(sorted(animals))
    count, legs = animals[name], ANIMALS[name]
    return [
        Candidate(str(sum(animals.values())), "natural:animal_count", "counted the animals, not their legs"),
        Candidate(str(total - count * legs), "natural:missed_group", f"left out every {name}"),
        Candidate(str(total + count * (_LEGS_NEAR[legs] - legs)), "natural:wrong_legs",
                  f"gave a {name} {_LEGS_NEAR[legs]} legs instead of {legs}"),
    ]


def _letter_counting(e: dict, rng: random.Random) -> list[Candidate]:
    md = e["metadata"]
    span, letter = md["span"], md["target_letter"]
    return [
        Candidate(str(sum(w.count(letter) for w in span)), "natural:case_sensitive", "missed the capital letters"),
        Candidate(str(sum(letter in w.lower() for w in span)), "natural:words_with_letter",
                  "counted the words that hold the letter, not the letters"),
    ]


def _word_sequence_reversal(e: dict, rng: random.Random) -> list[Candidate]:
    return [Candidate(", ".join(e["metadata"]["words"]), "natural:unreversed", "the list is not reversed")]


def _left_to_right(expr: str) -> int | None:
    toks = expr.split()
    if any(t in ("(", "-(", ")") for t in toks):
        return None
    value = int(toks[0])
    for op, b in zip(toks[1::2], toks[2::2]):
        value = {"+": value + int(b), "-": value - int(b), "*": value * int(b), "/": value // int(b) if int(b) else value}[op]
    return value


def _basic_arithmetic(e: dict, rng: random.Random) -> list[Candidate]:
    v = int(e["answer"])
    out = [Candidate(str(-v), "natural:sign", "got the sign wrong")]
    ltr = _left_to_right(e["metadata"]["expression"])
    if ltr is not None:
        out.append(Candidate(str(ltr), "natural:left_to_right", "worked left to right, ignoring operator precedence"))
    return out


def _gcd(e: dict, rng: random.Random) -> list[Candidate]:
    g = int(e["answer"])
    p = next((d for d in range(2, g + 1) if g % d == 0), None)
    return [Candidate(str(g // p), "natural:smaller_divisor", "found a common divisor, not the greatest")] if p else []


def _lcm(e: dict, rng: random.Random) -> list[Candidate]:
    nums, m = e["metadata"]["numbers"], int(e["answer"])
    prod = 1
    for x in nums:
        prod *= x
    return [
        Candidate(str(prod), "natural:product", "multiplied the numbers: a common multiple, not the least"),
        Candidate(str(2 * m), "natural:double", "a common multiple, not the least"),
    ]


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("spell_backward", "word", _spell_backward, unit="letter"),
        Task("word_sorting", "list", _word_sorting, unit="word"),
        Task("caesar_cipher", "words", _caesar_cipher, unit="word"),
        Task("letter_jumble", "words", _letter_jumble, unit="word"),
        Task("chain_sum", "int", _chain_sum),
        # No off-by-one for products and LCMs: most are even, and a classifier read the odd
        # last digit (77% on products); leg counts move by a pair of legs instead.
        Task("products", "int", _products, step=0),
        Task("count_bits", "int", _count_bits),
        Task("base_conversion", "digits", _base_conversion),
        Task("leg_counting", "int", _leg_counting, step=2),
        Task("letter_counting", "int", _letter_counting),
        Task("word_sequence_reversal", "list", _word_sequence_reversal, unit="word"),
        Task("basic_arithmetic", "int", _basic_arithmetic),
        Task("gcd", "int", _gcd),
        Task("lcm", "int", _lcm, step=0),
    )
}


# ------------------------------------------------------------------ one-step perturbations


def _items(answer: str, shape: str) -> list[str]:
    if shape == "word":
        return list(answer)
    if shape == "words":
        return answer.split(" ")
    return answer.split(", ")


def _join(items: list[str], shape: str) -> str:
    return {"word": "", "words": " ", "list": ", "}[shape].join(items)


def _perturb_number(gold: str, task: Task, e: dict, rng: random.Random) -> list[Candidate]:
    out = []
    if task.shape == "int":
        v, s = int(gold), task.step
        if s:
            kind = "perturb:off_by_one" if s == 1 else f"perturb:off_by_{s}"
            out += [Candidate(str(v + s), kind, f"off by {s}"), Candidate(str(v - s), kind, f"off by {s}")]
        base = 10
    else:
        base = e["metadata"]["target_base"]
    sign, digits = ("-", gold[1:]) if gold.startswith("-") else ("", gold)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"[:base]
    if len(digits) >= 2:
        # Never the last digit (here or in the swap below): products and leg counts are mostly
        # even, so a changed last digit is a tell.
        k = rng.randrange(len(digits) - 1)
        d = alphabet.index(digits[k])
        ds = [x for x in (d - 1, d + 1) if 0 <= x < base and not (k == 0 and x == 0)]
        if ds:
            new = digits[:k] + alphabet[rng.choice(ds)] + digits[k + 1:]
            out.append(Candidate(sign + new, "perturb:digit", "one digit is wrong"))
        pairs = [k for k in range(len(digits) - 2) if digits[k] != digits[k + 1] and not (k == 0 and digits[1] == "0")]
        if pairs:
            k = rng.choice(pairs)
            new = digits[:k] + digits[k + 1] + digits[k] + digits[k + 2:]
            out.append(Candidate(sign + new, "perturb:swap_digits", "two adjacent digits are swapped"))
    return out


def _perturb_items(gold: str, task: Task, rng: random.Random, vocab: dict[tuple[int, str], list[str]]) -> list[Candidate]:
    items, unit = _items(gold, task.shape), task.unit or "item"
    out = []
    n = len(items)
    pairs = [k for k in range(n - 1) if items[k] != items[k + 1]]
    if pairs:
        k = rng.choice(pairs)
        sw = items[:k] + [items[k + 1], items[k]] + items[k + 2:]
        out.append(Candidate(_join(sw, task.shape), "perturb:swap_adjacent", f"two adjacent {unit}s are swapped"))
    # No dropped or repeated letter, word or item: the length moves with them, and the longest- or
    # shortest-response baseline was right on every such item (a classifier on up to 82%).
    if task.shape in ("words", "list") and vocab:
        # A same-length word of the same case from the task's other answers: a misremembered word.
        k = rng.randrange(n)
        same = [w for w in vocab.get((len(items[k]), _case(items[k])), ()) if w != items[k]]
        if same:
            changed = items[:k] + [rng.choice(same)] + items[k + 1:]
            out.append(Candidate(_join(changed, task.shape), "perturb:replace_word", f"one {unit} is wrong"))
    return out


# ------------------------------------------------------------------ surface checks


def _case(s: str) -> str:
    letters = [c for c in s if c.isalpha()]
    if not letters:
        return "none"
    if all(c.isupper() for c in letters):
        return "upper"
    if all(c.islower() for c in letters):
        return "lower"
    return "mixed"


def _tolerance(gold: str, shape: str) -> int:
    """How many characters a wrong answer's length may differ from the gold's (a number's sign aside).

    None for numbers and single words: a sum beside a product, or a product beside a least common
    multiple, is shorter or longer nearly every time, and the longest-response baseline read that.
    """
    return max(3, len(gold) // 10) if shape in ("words", "list") else 0


def _length(answer: str, shape: str) -> int:
    return len(answer.lstrip("-")) if shape == "int" else len(answer)


def _well_formed(answer: str, shape: str) -> bool:
    if shape == "int":
        return re.fullmatch(r"-?\d+", answer) is not None and not re.match(r"-?0\d", answer) and answer != "-0"
    if shape == "digits":
        return re.fullmatch(r"[0-9a-z]+", answer) is not None and not (len(answer) > 1 and answer[0] == "0")
    if shape == "word":
        return re.fullmatch(r"\w+", answer) is not None
    if shape == "words":
        return re.fullmatch(r"\S+( \S+)*", answer) is not None
    return re.fullmatch(r"[^,\s]+(, [^,\s]+)*", answer) is not None


def _size(answer: str, shape: str) -> int:
    """Length (a number's sign included) or item count: what a sibling must share with the gold."""
    return len(answer) if shape in ("int", "digits", "word") else len(_items(answer, shape))


# ------------------------------------------------------------------ reasoning-gym access


def _require_task(task: str) -> Task:
    if task not in TASKS:
        raise ValueError(f"unknown reasoning-gym task {task!r} (supported: {', '.join(TASKS)})")
    return TASKS[task]


@lru_cache(maxsize=None)
def _curriculum_top(task: str) -> int:
    from reasoning_gym.factory import create_curriculum

    return max(len(a.levels) for a in create_curriculum(task).attributes.values()) - 1


def max_level(task: str) -> int:
    """The highest curriculum level of ``task`` (every attribute at its last level)."""
    _require_task(task)
    return _curriculum_top(task)


@lru_cache(maxsize=None)
def task_dataset(task: str, level: int) -> Any:
    """reasoning-gym's dataset for ``task`` configured by its curriculum at ``level``.

    One instance per (task, level), with seed 0: item ``idx`` is drawn from ``Random(idx)``, so a
    stream of items is a window of indices (:func:`_window`), and word lists load once.
    """
    _require_task(task)
    import reasoning_gym
    from reasoning_gym.factory import create_curriculum

    top = _curriculum_top(task)
    if not 0 <= level <= top:
        raise ValueError(f"level must be between 0 and {top} for {task}, got {level}")
    cur = create_curriculum(task)
    cur.set_global_level(level)
    try:
        cfg = cur.generate_configuration({"seed": 0, "size": _SIZE})
        return reasoning_gym.create_dataset(task, **{f.name: getattr(cfg, f.name) for f in fields(cfg)})
    except (AssertionError, TypeError, ValueError) as e:
        raise ValueError(f"level {level} of {task}: reasoning-gym rejects the curriculum's configuration ({e})") from e


def _window(task: str, seed: int, level: int, stream: str) -> int:
    """The first reasoning-gym index of a stream: 2**20 apart at least, out of 2**60."""
    return int(hashlib.sha256(f"{SOURCE}:{task}:{seed}:{level}:{stream}".encode()).hexdigest()[:10], 16) << 20


def split_of(task: str, question: str) -> str:
    """``train`` or ``heldout``: a fixed function of the task and the normalised question."""
    return side(f"{task}\x00{normalise(question)}")


def entry_of(example: Example) -> dict:
    """The reasoning-gym entry (question, answer, metadata) an item was built from, drawn again."""
    m = example.meta
    return task_dataset(m["task"], m["level"])[m["rg_index"]]


def score_answer(example: Example, answer: str) -> float:
    """The task's own ``score_answer`` of ``answer`` for this item (1.0 = right)."""
    return float(task_dataset(example.meta["task"], example.meta["level"]).score_answer(answer, entry_of(example)))


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


# ------------------------------------------------------------------ generation


def _content_key(question: str, answers: Sequence[str]) -> str:
    return json.dumps([normalise(question), sorted(normalise(a) for a in answers)])


class _Stream:
    """One task's items of one split, drawn lazily from reasoning-gym in index order."""

    def __init__(self, task: str, seed: int, level: int, split: str, n_responses: int, max_draws: int) -> None:
        self.task, self.spec, self.seed, self.level, self.split = task, TASKS[task], seed, level, split
        self.n_wrong, self.max_draws = n_responses - 1, max_draws
        self.ds = task_dataset(task, level)
        self.base = _window(task, seed, level, "items")
        entries = self._pool_entries()
        self.freq = Counter(e["answer"] for e in entries)
        # Distinct answers, so a sibling is proposed as often as its gold would propose it back.
        self.pool = [(a, _size(a, self.spec.shape)) for a in sorted(self.freq)]
        self.vocab: dict[tuple[int, str], list[str]] = {}
        if self.spec.shape in ("words", "list"):
            for w in sorted({w for a, _ in self.pool for w in _items(a, self.spec.shape)}):
                self.vocab.setdefault((len(w), _case(w)), []).append(w)
        # How often an item with gold g proposes w, summed over the pool's items with gold g.
        self.proposed: dict[str, Counter] = {}
        for idx, e in enumerate(entries):
            rng = random.Random(f"{SOURCE}:{task}:{seed}:{level}:{split}:proposal:{idx}")
            self.proposed.setdefault(e["answer"], Counter()).update(self._proposal(self._candidates(e, rng)))
        self.j, self.seen, self.made = 0, set(), 0

    def _pool_entries(self) -> list[dict]:
        # A window of its own, so an item's siblings do not depend on how many items are asked for.
        base = _window(self.task, self.seed, self.level, "siblings")
        pool: list[dict] = []
        for idx in range(POOL * 25):
            e = self.ds[base + idx]
            if self.split == "all" or split_of(self.task, e["question"]) == self.split:
                pool.append(e)
                if len(pool) == POOL:
                    break
        return pool

    def _fits(self, c: str, gold: str, e: dict, taken: set[str]) -> bool:
        shape = self.spec.shape
        if not c.strip() or normalise(c) in taken or not _well_formed(c, shape):
            return False
        if abs(_length(c, shape) - _length(gold, shape)) > _tolerance(gold, shape) or _case(c) != _case(gold):
            return False
        try:
            return float(self.ds.score_answer(c, e)) < 1.0
        except Exception:  # noqa: BLE001 - a scorer that cannot read a candidate cannot vouch that it is wrong
            return False

    def _candidates(self, e: dict, rng: random.Random) -> dict[str, list[Candidate]]:
        gold, shape = e["answer"], self.spec.shape
        natural = self.spec.natural(e, rng)
        if shape in ("int", "digits"):
            perturb = _perturb_number(gold, self.spec, e, rng)
        else:
            perturb = _perturb_items(gold, self.spec, rng, self.vocab)
        size = _size(gold, shape)
        near = [a for a, sz in self.pool if sz == size and abs(len(a) - len(gold)) <= _tolerance(gold, shape)]
        siblings = [Candidate(a, "sibling", "the answer to another question") for a in rng.sample(near, min(4, len(near)))]
        taken = {normalise(gold)}
        out: dict[str, list[Candidate]] = {}
        for family, cands in (("natural", natural), ("perturb", perturb), ("sibling", siblings)):
            for c in cands:
                if self._fits(c.answer, gold, e, taken):
                    taken.add(normalise(c.answer))
                    out.setdefault(family, []).append(c)
        return out

    @staticmethod
    def _proposal(families: dict[str, list[Candidate]]) -> dict[str, float]:
        """The chance :meth:`_pick` draws each candidate first."""
        out: dict[str, float] = {}
        for cands in families.values():
            types = Counter(c.mistake for c in cands)
            for c in cands:
                out[c.answer] = 1 / len(families) / len(types) / types[c.mistake]
        return out

    def _pick(self, families: dict[str, list[Candidate]], rng: random.Random) -> list[Candidate]:
        """Family first, then mistake type, then candidate: every family and type gets its share."""
        by_family = {f: {} for f in sorted(families)}
        for f, cands in families.items():
            for c in cands:
                by_family[f].setdefault(c.mistake, []).append(c)
        picked: list[Candidate] = []
        while len(picked) < self.n_wrong and by_family:
            f = rng.choice(sorted(by_family))
            types = by_family[f]
            t = rng.choice(sorted(types))
            c = types[t].pop(rng.randrange(len(types[t])))
            picked.append(c)
            if not types[t]:
                del types[t]
            if not types:
                del by_family[f]
        return picked

    def _accept(self, gold: str, wrong: str, q_wrong: float) -> float:
        """Metropolis-Hastings acceptance of the pair (gold, wrong), proposed with chance ``q_wrong``.

        Kept pairs are as likely as their mirror image (``wrong`` as some item's gold with ``gold``
        as its mistake): every answer is then as common among the wrong responses as among the
        right ones, and its value alone says nothing. Frequencies and the mirror's proposal chance
        come from the pool, shrunk by a pseudo-count towards "as common as the gold, proposed as
        often": where answers seldom repeat (words, sentences, large numbers) the ratio is 1 and
        everything is kept; where few values recur (bit counts, letter counts, small GCDs) a common
        gold with a rare or one-way mistake is dropped as often as needed.
        """
        fw, fg = self.freq[wrong], self.freq[gold]
        q_back = (self.proposed.get(wrong, Counter())[gold] + PSEUDO_COUNT * q_wrong) / (fw + PSEUDO_COUNT)
        return min(1.0, (fw + PSEUDO_COUNT) * q_back / ((fg + PSEUDO_COUNT) * q_wrong))

    def next(self) -> tuple[dict, int, list[Candidate], random.Random]:
        """The next item of the stream: its entry, its position ``j``, its mistakes and its generator."""
        while self.j < self.max_draws:
            j, self.j = self.j, self.j + 1
            e = self.ds[self.base + j]
            q = e["question"].strip()
            if self.split != "all" and split_of(self.task, q) != self.split:
                continue
            if self.split == "heldout" and normalise(q) in self.seen:
                continue  # one held-out item per question
            if float(self.ds.score_answer(e["answer"], e)) != 1.0:
                continue  # never seen; a gold its own scorer doubts is no ground truth
            rng = random.Random(f"{SOURCE}:{self.task}:{self.seed}:{self.level}:{self.split}:{j}")
            families = self._candidates(e, rng)
            chance = self._proposal(families)
            wrong = self._pick(families, rng)
            if len(wrong) < self.n_wrong:
                continue  # too few safe mistakes for this question: draw the next one
            # With more than one mistake each is weighed by its chance of being drawn first: near enough.
            if not all(rng.random() < self._accept(e["answer"], c.answer, chance[c.answer]) for c in wrong):
                continue
            key = normalise(q) if self.split == "heldout" else _content_key(q, [e["answer"], *(c.answer for c in wrong)])
            if key in self.seen:
                continue
            self.seen.add(key)
            self.made += 1
            return e, j, wrong, rng
        raise ValueError(
            f"reasoning-gym task {self.task} at level {self.level}: found only {self.made} {self.split} items in "
            f"{self.max_draws} draws (too few distinct questions at this level; ask for a smaller n, "
            f"another level, or another split)"
        )


def _gold_slot(task: str, k: int, seed: int, n_responses: int) -> int:
    """Each block of ``n_responses`` consecutive items of a task holds the gold in every slot once."""
    block = list(range(n_responses))
    random.Random(f"{SOURCE}:{task}:{seed}:best:{k // n_responses}").shuffle(block)
    return block[k % n_responses]


def _example(stream: _Stream, k: int, n_responses: int) -> Example:
    e, j, wrong, rng = stream.next()
    task, gold = stream.task, e["answer"]
    best = _gold_slot(task, k, stream.seed, n_responses)
    rng.shuffle(wrong)
    answers = [*wrong[:best], None, *wrong[best:]]
    q = e["question"].strip()
    md = _jsonable(e["metadata"])
    rmeta = [
        {"answer": gold, "correct": True, "mistake": None, "reason": None, "score": 1.0} if a is None else
        {"answer": a.answer, "correct": False, "mistake": a.mistake, "reason": a.reason,
         "score": float(stream.ds.score_answer(a.answer, e))}
        for a in answers
    ]
    return Example(
        id=f"{SOURCE}/{task}/{stream.split}/L{stream.level}/{stream.seed}/{j}",
        source=SOURCE,
        category=task,
        messages=[user(q)],
        responses=[RESPONSE.format(gold if a is None else a.answer) for a in answers],
        best=best,
        labels=[1.0 if a is None else 0.0 for a in answers],
        meta={
            "kind": task,
            "task": task,
            "level": stream.level,
            "split": split_of(task, q),
            "question": q,
            "answer": gold,
            "params": {k: v for k, v in md.items() if k not in ("source_dataset", "source_index", "difficulty")},
            "difficulty": md.get("difficulty"),
            "rg_index": stream.base + j,  # reasoning-gym's index of the question (see entry_of)
            "mistake": " + ".join(sorted({r["mistake"] for r in rmeta if not r["correct"]})),
            "response_meta": rmeta,
        },
    )


def generate_reasoning_gym(
    tasks: Sequence[str], n_items: int, seed: int = 0, split: str = "all", level: int = 0, n_responses: int = 2
) -> list[Example]:
    """``n_items`` items of ``tasks`` in turn (item ``i`` from ``tasks[i % len(tasks)]``).

    Raises ``ValueError`` naming the bad argument, or when a task has too few distinct questions
    of ``split`` at ``level`` for its share of ``n_items``.
    """
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks: name at least one task")
    for t in tasks:
        _require_task(t)
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks: a task is named twice in {','.join(tasks)}")
    check_split(split)
    if not 2 <= n_responses <= MAX_RESPONSES:
        raise ValueError(f"responses must be between 2 and {MAX_RESPONSES}, got {n_responses}")
    if n_items < 1:
        raise ValueError(f"n must be >= 1, got {n_items}")
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    share = -(-n_items // len(tasks))
    streams = {t: _Stream(t, seed, level, split, n_responses, max_draws=2000 + 60 * share) for t in tasks}
    counts = dict.fromkeys(tasks, 0)
    out = []
    for i in range(n_items):
        t = tasks[i % len(tasks)]
        out.append(_example(streams[t], counts[t], n_responses))
        counts[t] += 1
    return out


OPTIONS = ("n", "seed", "split", "level", "responses")


def parse_spec(spec: str) -> dict[str, Any]:
    """``reasoning-gym:TASKS?n=&seed=&split=&level=&responses=`` as keyword arguments of
    :func:`generate_reasoning_gym`; ``ValueError`` naming the bad option."""
    names, _, query = spec.removeprefix(PREFIX).partition("?")
    q = options(query, OPTIONS)
    return {"tasks": [t.strip() for t in names.split(",") if t.strip()], "n_items": integer(q, "n", DEFAULT_ITEMS),
            "seed": integer(q, "seed", 0), "split": q.get("split", "all"), "level": integer(q, "level", 0),
            "n_responses": integer(q, "responses", 2)}


def with_level(spec: str, level: int) -> str:
    """``spec`` at curriculum ``level``: the same tasks and options as written, ``level=`` replaced
    (or added). RFT's curriculum raises the level of its training spec with it."""
    from urllib.parse import urlencode

    parse_spec(spec)  # refuse a malformed spec here, not when the new level is loaded
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    names, _, query = spec.removeprefix(PREFIX).partition("?")
    return f"{PREFIX}{names}?{urlencode(options(query, OPTIONS) | {'level': str(level)})}"


def load_spec(spec: str) -> list[Example]:
    """The items a ``reasoning-gym:...`` spec names."""
    return generate_reasoning_gym(**parse_spec(spec))
