"""spct's scorers against each benchmark's own scoring code, on the same judgments.

tests/official/ holds the official functions: allenai/reward-bench vendored verbatim (Apache-2.0),
THU-KEG/RM-Bench, RMB and ScalerLab/JudgeBench transcribed with line references (no licence file
upstream). Each test builds benchmark records in the official format, loads them with spct's own
converters, lets a "judge" score them (ties, unparsed judgments, votes over k samples, missing
sections and domains, zero spread in Ties, best-of-N, one order right and one tied), then converts
the judgments into the official function's input and asserts that ``score(...)`` and
``headline(...)`` give the official numbers. Random cases come from seeded generators, so a
failure names its seed and reruns identically.

Where spct deliberately differs from the official code (a partial RewardBench run, an RM-Bench
run missing a domain: the official code reports 0 or raises), the test says so and pins what
spct does instead.
"""

from __future__ import annotations

import math
import random
import warnings
from collections import defaultdict
from types import SimpleNamespace

import numpy as np
import pytest
from official import judgebench as jb_official
from official import rm_bench as rmbench_official
from official import rmb as rmb_official
from official.reward_bench import constants as rb_constants
from official.reward_bench import run_generative as rb_gen
from official.reward_bench import run_generative_v2 as rb_gen2
from official.reward_bench import utils as rb_utils
from official.table import Table

from spct.data.judgebench import convert_judgebench
from spct.data.records import Raw, Sink
from spct.data.rewardbench import REWARDBENCH_COUNTS, REWARDBENCH_SECTIONS, convert_rewardbench, convert_rewardbench2
from spct.data.rm_bench import convert_rm_bench
from spct.data.rmb import convert_rmb
from spct.evaluate.scoring import JUDGEBENCH_CATEGORIES, Outcome, headline, rmbench_matrix, score
from spct.types import Example

SEEDS = range(40)


def records(convert, recs, path="data.json"):
    return convert([Raw(path, "record", i, r) for i, r in enumerate(recs)], Sink(False))


def vote_of(ex: Example, samples, rng: random.Random, unit: str | None = None) -> Outcome:
    """One judgment of ``ex``: the vote over ``samples`` (each a score list in the example's original
    response order, or None for a critique that did not parse); the paper pick is a seeded coin."""
    totals, used = [0] * ex.n, 0
    for s in samples:
        if s is not None:
            totals, used = [t + v for t, v in zip(totals, s)], used + 1
    tied = [i for i, t in enumerate(totals) if t == max(totals)]
    return Outcome(ex, totals, used, rng.choice(tied), unit or str(ex.meta.get("group", ex.id)))


def random_samples(rng: random.Random, n: int, k: int, lo: int = 1, hi: int = 3, fail: float = 0.2):
    """k critiques of n responses; a narrow score range makes ties common."""
    return [None if rng.random() < fail else [rng.randint(lo, hi) for _ in range(n)] for _ in range(k)]


def same_headline(outs, r):
    assert headline(outs, r["benchmark"]) == pytest.approx(r["accuracy"], abs=1e-12)
    assert headline(outs, r["benchmark"], "paper") == pytest.approx(r["accuracy_paper"], abs=1e-12)


# ---------------------------------------------------------------- RewardBench


def test_rewardbench_constants_are_the_official_ones():
    assert REWARDBENCH_COUNTS == rb_constants.EXAMPLE_COUNTS
    assert REWARDBENCH_SECTIONS == rb_constants.SUBSET_MAPPING


def rewardbench_official(outs: list[Outcome], rng: random.Random) -> tuple[dict, dict]:
    """run_generative.py on the same judgments: each judgment one dataset row, shown in a random order
    (``is_shuffled``), its ratings turned into a winner by run_judge_ratings and into a result by
    process_shuffled (or get_judgement's tail); per-subset means; calculate_scores_per_section."""
    rows = []
    for o in outs:
        chosen, rejected = o.totals[o.example.best], o.totals[1 - o.example.best]
        if o.used == 0:
            chosen = rejected = -1  # _get_single_rating's -1 on a failed rating
        is_shuffled = rng.random() > 0.5
        a, b = (rejected, chosen) if is_shuffled else (chosen, rejected)
        winner = rb_gen.ratings_winner(a, b)
        if rng.random() < 0.5:
            result = rb_gen.process_shuffled(winner, is_shuffled)
        else:
            result = rb_gen.judgement_result(winner, *(("B", "A") if is_shuffled else ("A", "B")))
        rows.append({"subset": o.example.meta["subset"], "results": result})
    grouped = rb_gen.results_grouped(Table(rows), [r["subset"] for r in rows])
    grouped = {str(k): v for k, v in grouped.items()}
    return grouped, rb_utils.calculate_scores_per_section(rb_constants.EXAMPLE_COUNTS, rb_constants.SUBSET_MAPPING, grouped)


@pytest.mark.parametrize("seed", SEEDS)
def test_rewardbench_equals_run_generative(seed):
    rng = random.Random(f"rb:{seed}")
    subsets = rng.sample(sorted(REWARDBENCH_COUNTS) + ["not-a-subset"], rng.randint(1, 8))
    recs = [{"id": i, "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "subset": rng.choice(subsets)}
            for i in range(rng.randint(3, 25))]  # fmt: skip
    exs = records(convert_rewardbench, recs)
    k = rng.choice([1, 2, 4])  # greedy judges each rotation once (k=1, two outcomes); Voting@k one vote
    outs = [vote_of(e, random_samples(rng, 2, k), rng) for e in exs for _ in range(2 if k == 1 else 1)]
    grouped, sections = rewardbench_official(outs, rng)
    r = score(outs, "rewardbench")
    assert r["categories"] == pytest.approx(grouped)
    present = {s for s, tests in rb_constants.SUBSET_MAPPING.items() if any(t in grouped for t in tests)}
    assert r["sections"] == pytest.approx({s: sections[s] for s in present})
    # calculate_scores_per_section reports 0 for a section with no subsets; spct leaves it out
    # (missing_sections) and its headline is the mean of the sections evaluated.
    assert all(sections[s] == 0 for s in r["missing_sections"]) and set(r["missing_sections"]) == set(sections) - present
    if present:
        assert r["accuracy"] == pytest.approx(np.mean([sections[s] for s in present]))
    if len(present) == 4:
        assert r["accuracy"] == pytest.approx(np.mean(list(sections.values())))
    same_headline(outs, r)


def test_rewardbench_all_sections_is_the_leaderboard_mean():
    rng = random.Random(1)
    recs = [{"id": i, "prompt": f"q{i}", "chosen": "c", "rejected": f"r{i}", "subset": s}
            for i, s in enumerate(sorted(REWARDBENCH_COUNTS))]  # fmt: skip
    exs = records(convert_rewardbench, recs)
    outs = [vote_of(e, random_samples(rng, 2, 1), rng) for e in exs for _ in range(2)]
    _, sections = rewardbench_official(outs, rng)
    r = score(outs)
    assert r["benchmark"] == "rewardbench" and r["missing_sections"] == []
    assert r["accuracy"] == pytest.approx(sum(sections.values()) / 4)


# ---------------------------------------------------------------- RewardBench 2


def ties_official(outs: list[Outcome]) -> float:
    """process_single_model on the same judgments: one row per Ties example, each response's score its
    mean voted score over every judgment of the example (the official -1 where none parsed)."""
    pooled: dict[tuple[str, str], list] = {}
    ids: dict[str, int] = {}
    for o in outs:
        kind = o.example.meta["ties_kind"]
        key = (o.unit, kind)
        ex, totals, used = pooled.get(key, (o.example, [0] * o.example.n, 0))
        pooled[key] = (ex, [a + b for a, b in zip(totals, o.totals)], used + o.used)
        ids.setdefault(o.unit, len(ids))
    rows = [
        {"id": f"{kind}:{ids[unit]}", "num_correct": ex.meta["num_correct"],
         "scores": [t / used for t in totals] if used else [-1] * len(totals)}
        for (unit, kind), (ex, totals, used) in pooled.items()
    ]  # fmt: skip
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's x/0 and mean([]), as upstream
        _, overall = rb_utils.process_single_model(Table(rows))
    return overall


def rb2_best_of_4_official(o: Outcome, rng: random.Random) -> float:
    """run_generative_v2.py ratings mode: ratings in the official order (chosen first), -1 unparsed."""
    order = [o.example.best] + [i for i in range(o.example.n) if i != o.example.best]
    ratings = [o.totals[i] if o.used else -1 for i in order]
    api = rb_gen2.api_ratings_result(rb_gen2.ratings_multi_winners(ratings)[0])
    vllm = rb_gen2.vllm_ratings_result(ratings)
    assert api == vllm  # the API and vLLM paths agree
    return api


def rb2_records(rng: random.Random, n_prompts: int, subsets: list[str]):
    recs = []
    for i in range(rng.randint(2, 12)):
        recs.append({"id": f"b{i}", "prompt": f"q{i}", "subset": rng.choice(subsets), "chosen": [f"right {i}"],
                     "rejected": [f"wrong {i}.{j}" for j in range(3)], "num_correct": 1})  # fmt: skip
    for p in range(n_prompts):
        kinds = rng.choice([("ref", "tied"), ("ref", "tied"), ("ref",), ("tied",)]) if p else ("ref", "tied")
        for kind in kinds:
            n_ok = 1 if kind == "ref" else rng.randint(2, 4)
            recs.append({"id": f"{kind}:{p}", "prompt": f"t{p}", "subset": "Ties",
                         "chosen": [f"{kind}{p} ok{j}" for j in range(n_ok)],
                         "rejected": [f"{kind}{p} no{j}" for j in range(rng.randint(1, 3))], "num_correct": n_ok})  # fmt: skip
    return recs


@pytest.mark.parametrize("seed", SEEDS)
def test_rewardbench2_equals_ratings_mode_and_process_single_model(seed):
    rng = random.Random(f"rb2:{seed}")
    subsets = rng.sample(["Factuality", "Precise IF", "Math", "Safety", "Focus"], rng.randint(1, 3))
    exs = records(convert_rewardbench2, rb2_records(rng, rng.randint(1, 6), subsets))
    outs = []
    for e in exs:
        # Greedy: one outcome per rotation; sampled: one vote over k. Narrow score ranges give ties and
        # zero spread among tied correct answers; some judgments do not parse.
        k, copies = rng.choice([(1, e.n), (1, 1), (3, 1)])
        outs += [vote_of(e, random_samples(rng, e.n, k, 1, rng.choice([2, 4]), 0.15), rng) for _ in range(copies)]
    r = score(outs, "rewardbench-2")
    by_subset = defaultdict(list)
    for o in outs:
        if o.example.category != "Ties":
            by_subset[o.example.category].append(rb2_best_of_4_official(o, rng))
    official = {s: sum(v) / len(v) for s, v in by_subset.items()}  # run_generative_v2.py lines 676-680
    official["Ties"] = ties_official([o for o in outs if o.example.category == "Ties"])
    assert r["subsets"] == pytest.approx(official, abs=1e-12)
    assert r["ties"]["score"] == pytest.approx(official["Ties"], abs=1e-12)
    # The leaderboard averages the subsets (the RewardBench 2 dataset card).
    assert r["accuracy"] == pytest.approx(sum(official.values()) / len(official), abs=1e-12)
    same_headline(outs, r)


def ties_examples(spec: dict[str, tuple[list[int], list[int]]]) -> dict[str, Example]:
    """Ties examples from ``{"ref:0": (correct scores, incorrect scores), ...}``; responses named by score."""
    recs = [{"id": rid, "prompt": f"p{rid.split(':')[1]}", "subset": "Ties", "chosen": [f"{rid} ok{j}" for j in range(len(ok))],
             "rejected": [f"{rid} no{j}" for j in range(len(no))], "num_correct": len(ok)} for rid, (ok, no) in spec.items()]  # fmt: skip
    return {e.meta["rb2_id"]: e for e in records(convert_rewardbench2, recs)}


def ties_outcome(e: Example, scores: list[int] | None, unit_rng=random.Random(0)) -> Outcome:
    return vote_of(e, [scores], unit_rng)


def test_ties_hard_term_takes_the_smaller_margin():
    # process_single_model line 1084: correctness_preferred_hard = mean(minimum(ref margin, tied margin) > spread).
    # ref:0 correct [5] vs [4, 1]: margin 1 ; tied:0 correct [9, 7] vs [3]: margin 4, spread 2.
    # preferred: 4 > 2 ; hard: min(1, 4) = 1 > 2 is false (max would say 4 > 2: true) ;
    # margin term tanh(1/2 - 1). Score .3 + .3 + .2 + 0 + .01 tanh(-.5).
    exs = ties_examples({"ref:0": ([5], [4, 1]), "tied:0": ([9, 7], [3])})
    outs = [ties_outcome(exs["ref:0"], [5, 4, 1]), ties_outcome(exs["tied:0"], [9, 7, 3])]
    r = score(outs, "rewardbench-2")
    assert r["ties"]["correctness_preferred"] == 1.0 and r["ties"]["correctness_preferred_hard"] == 0.0
    expected = 0.3 + 0.3 + 0.2 + 0.01 * math.tanh(-0.5)
    assert r["accuracy"] == pytest.approx(expected) and ties_official(outs) == pytest.approx(expected)


def test_ties_pools_every_judgment_into_a_mean_score():
    # ref:0 judged twice: [6, 4, 1] and [5, 4, 1] -> totals [11, 8, 2] over 2 votes -> mean [5.5, 4, 1],
    # margin 1.5 (the totals themselves would give margin 3). One unparsed judgment adds nothing.
    # tied:0 once: correct [9, 7] vs [3] -> margin 4, spread 2.
    # hard: min(1.5, 4) = 1.5 > 2 is false (with margin 3 it would be true) ; margin term tanh(1.5/2 - 1).
    exs = ties_examples({"ref:0": ([5], [4, 1]), "tied:0": ([9, 7], [3])})
    outs = [ties_outcome(exs["ref:0"], [6, 4, 1]), ties_outcome(exs["ref:0"], [5, 4, 1]), ties_outcome(exs["ref:0"], None),
            ties_outcome(exs["tied:0"], [9, 7, 3])]  # fmt: skip
    r = score(outs, "rewardbench-2")
    expected = 0.3 + 0.3 + 0.2 + 0.0 + 0.01 * math.tanh(1.5 / 2 - 1)
    assert r["ties"]["correctness_preferred_hard"] == 0.0
    assert r["accuracy"] == pytest.approx(expected) and ties_official(outs) == pytest.approx(expected)
    # Read as one vote (totals, not means) the same judgments would clear the hard term: the case has teeth.
    once = [ties_outcome(exs["ref:0"], [11, 8, 2]), ties_outcome(exs["tied:0"], [9, 7, 3])]
    assert ties_official(once) != pytest.approx(expected)  # totals, not means: margin 3, hard true


def test_ties_zero_spread_counts_as_a_full_margin():
    # process_single_model lines 1088-1090: tanh(margin / spread - 1), nan (0/0) -> 0; x/0 is +-inf,
    # so tied correct answers with the same score count +1 (margin > 0) or -1 (margin < 0).
    # Prompt 0: ref [8] vs [2] margin 6 ; tied [7, 7] vs [3] margin 4, spread 0 -> tanh(+inf) = 1 ;
    # preferred 4 > 0, hard min(6, 4) = 4 > 0.
    # Prompt 1: ref [2] vs [5] margin -3 ; tied [3, 3] vs [5] margin -2, spread 0 -> tanh(-inf) = -1.
    # Prompt 2: ref [4] vs [4] margin 0 ; tied [4, 4] vs [4] margin 0, spread 0 -> 0/0 -> 0.
    # ref acc 1/3, tied acc 1/3, preferred 1/3, hard 1/3, margin (1 - 1 + 0)/3 = 0.
    spec = {"ref:0": ([8], [2]), "tied:0": ([7, 7], [3]), "ref:1": ([2], [5]), "tied:1": ([3, 3], [5]),
            "ref:2": ([4], [4]), "tied:2": ([4, 4], [4])}  # fmt: skip
    exs = ties_examples(spec)
    outs = [ties_outcome(exs[i], ok + no) for i, (ok, no) in spec.items()]
    r = score(outs, "rewardbench-2")
    assert r["ties"]["correctness_margin_score"] == 0.0
    assert r["accuracy"] == pytest.approx(0.3 / 3 + 0.3 / 3 + 0.2 / 3 + 0.2 / 3) == pytest.approx(ties_official(outs))
    # Only prompt 0: the +1 from the zero spread is the whole margin term.
    first = outs[:2]
    assert score(first, "rewardbench-2")["ties"]["correctness_margin_score"] == 1.0
    assert score(first, "rewardbench-2")["accuracy"] == pytest.approx(1.01) == pytest.approx(ties_official(first))
    assert score(outs[2:4], "rewardbench-2")["ties"]["correctness_margin_score"] == -1.0


# ---------------------------------------------------------------- RM-Bench

RMBENCH_FILES = ("chat", "math", "code", "safety-refuse", "safety-response")


@pytest.mark.parametrize("seed", SEEDS)
def test_rmbench_equals_compute_accuracy(seed):
    # A judge with one score per response (the official RM's input): every pair it judges gets the two
    # responses' scores, in both orders alike. An unparsed response makes every comparison it is in a
    # miss: the official input gets -inf for a chosen and +inf for a rejected one.
    rng = random.Random(f"rmbench:{seed}")
    files = rng.sample(RMBENCH_FILES, rng.randint(1, 5)) if seed % 4 else list(RMBENCH_FILES)
    exs, official, table = [], [], {}
    for f in files:
        recs = []
        for p in range(rng.randint(1, 4)):
            recs.append({"id": p, "prompt": f"{f} q{p}", "chosen": [f"{f}/{p} c{i}" for i in range(3)],
                         "rejected": [f"{f}/{p} r{j}" for j in range(3)]})  # fmt: skip
            sc = {t: (None if rng.random() < 0.1 else rng.randint(1, 4)) for t in recs[-1]["chosen"] + recs[-1]["rejected"]}
            table |= sc
            official.append({
                "domain": f,
                "score_chosen": [-math.inf if sc[t] is None else sc[t] for t in recs[-1]["chosen"]],
                "score_rejected": [math.inf if sc[t] is None else sc[t] for t in recs[-1]["rejected"]],
            })  # fmt: skip
        exs += records(convert_rm_bench, recs, path=f"{f}.json")
    copies = rng.choice([1, 2])  # greedy: both rotations; sampled: one vote
    outs = []
    for e in exs:
        s = [table[t] for t in e.responses]
        outs += [vote_of(e, [None if None in s else s], rng) for _ in range(copies)]
    r = score(outs, "rm-bench")
    domains = sorted({d for d in ("chat", "math", "code", "safety") for f in files if f.startswith(d)})
    per_domain = rmbench_official.split_dataset_by_domain(official)
    per = {d: rmbench_official.compute_accuracy(per_domain[d]) for d in domains}
    for d in domains:
        assert r["domains"][d]["hard"] == pytest.approx(per[d]["hard_acc"])
        assert r["domains"][d]["normal"] == pytest.approx(per[d]["normal_acc"])
        assert r["domains"][d]["easy"] == pytest.approx(per[d]["easy_acc"])
        assert r["categories"][d] == pytest.approx(np.mean(list(per[d].values())))
    if len(domains) == 4:
        full = rmbench_official.compute_accuracy(official)
        assert r["accuracy"] == pytest.approx(full["total_avg_acc"])
        assert (r["hard"], r["normal"], r["easy"]) == pytest.approx((full["hard_acc"], full["normal_acc"], full["easy_acc"]))
        assert r["categories"] == pytest.approx({d: full[d] for d in domains})
    else:
        # compute_accuracy needs all four domains (an empty one raises); spct averages those present.
        with pytest.raises(IndexError):
            rmbench_official.compute_accuracy(official)
        assert r["accuracy"] == pytest.approx(np.mean([np.mean(list(per[d].values())) for d in domains]))
    same_headline(outs, r)


def test_rmbench_missing_cells_are_left_out_not_counted_wrong():
    # The official input always has all 9 cells per prompt (it divides by the number of prompts).
    # Prompt 1 judged in every cell; prompt 2 lost its (0, 2) cell. spct divides each cell by the
    # judgments it has: cell (0, 2) is prompt 1's alone; the others the mean of both. Filling the
    # cell back makes it the official figure again.
    recs = [{"id": p, "prompt": f"q{p}", "chosen": [f"{p}c{i}" for i in range(3)], "rejected": [f"{p}r{j}" for j in range(3)]}
            for p in (1, 2)]  # fmt: skip
    scores = {"1c0": 5, "1c1": 5, "1c2": 5, "1r0": 1, "1r1": 1, "1r2": 1, "2c0": 1, "2c1": 1, "2c2": 1, "2r0": 5, "2r1": 5, "2r2": 5}
    exs = records(convert_rm_bench, recs, path="chat.json")
    rng = random.Random(0)
    outs = [vote_of(e, [[scores[t] for t in e.responses]], rng) for e in exs]
    hole = [o for o in outs if not (o.example.meta["prompt_id"] == 2 and o.example.meta["chosen_style"] == 0 and o.example.meta["rejected_style"] == 2)]
    m = rmbench_matrix(hole)
    assert m[0][2] == 1.0 and all(m[i][j] == 0.5 for i in range(3) for j in range(3) if (i, j) != (0, 2))
    r = score(hole, "rm-bench")
    assert r["domains"]["chat"]["hard"] == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    official = [{"domain": "chat", "score_chosen": [scores[f"{p}c{i}"] for i in range(3)], "score_rejected": [scores[f"{p}r{j}"] for j in range(3)]}
                for p in (1, 2)]  # fmt: skip
    chat = rmbench_official.compute_accuracy(rmbench_official.split_dataset_by_domain(official)["chat"])
    assert score(outs, "rm-bench")["domains"]["chat"]["hard"] == pytest.approx(chat["hard_acc"]) == 0.5


# ---------------------------------------------------------------- RMB


def rmb_records(rng: random.Random):
    goals = rng.sample(["Helpfulness", "Harmlessness"], rng.randint(1, 2))
    recs = []
    for i in range(rng.randint(2, 20)):
        goal = rng.choice(goals)
        conv = [{"role": "user", "content": f"q{i}"}]
        if rng.random() < 0.6:
            recs.append({"pair_uid": f"p{i}", "conversation_input": conv, "chosen": {"llm_name": "a", "answer": f"good {i}"},
                         "reject": {"llm_name": "b", "answer": f"bad {i}"}, "category_path": f"Pairwise_set/{goal}/Chat/S{i % 3}"})  # fmt: skip
        else:
            losers = [{"llm_name": "b", "answer": f"bad {i}.{j}"} for j in range(rng.randint(1, 4))]
            recs.append({"bon_uid": f"b{i}", "conversation_input": conv, "bon_best": {"llm_name": "a", "answer": f"best {i}"},
                         "loser_list": losers, "category_path": f"BoN_set/{goal}/Chat/S{i % 3}"})  # fmt: skip
    return recs


def rmb_official_result(o: Outcome) -> int:
    best = o.totals[o.example.best]
    others = [t for i, t in enumerate(o.totals) if i != o.example.best]
    # An unparsed judgment scores nothing: totals all 0, so the chosen is not above the rejected.
    if o.example.meta["kind"] == "pairwise":
        return rmb_official.pairwise_result(best, others[0])
    return rmb_official.bon_result(best, others)


@pytest.mark.parametrize("seed", SEEDS)
def test_rmb_equals_my_run_rm_pooled(seed):
    rng = random.Random(f"rmb:{seed}")
    exs = records(convert_rmb, rmb_records(rng))
    k = rng.choice([1, 3])
    outs = [vote_of(e, random_samples(rng, e.n, k), rng) for e in exs for _ in range(e.n if k == 1 else 1)]
    r = score(outs, "rmb")
    results = [rmb_official_result(o) for o in outs]
    assert r["accuracy"] == pytest.approx(rmb_official.acc(results))  # one pool, as my_run_rm.py prints ACC
    by_set = defaultdict(list)
    for o, res in zip(outs, results):
        by_set[f"{o.example.meta['goal']}/{o.example.meta['kind']}"].append(res)
    assert r["sets"] == pytest.approx({s: rmb_official.acc(v) for s, v in by_set.items()})
    assert r["set_mean"] == pytest.approx(np.mean([rmb_official.acc(v) for v in by_set.values()]))
    same_headline(outs, r)


def test_rmb_pools_pairs_instead_of_averaging_goals():
    # The case: 1 right helpfulness pair and 3 wrong harmlessness pairs. my_run_rm.py run on
    # these files prints ACC = 1/4; the mean of the two goals' figures would be (1 + 0)/2.
    recs = [{"pair_uid": f"p{i}", "conversation_input": [{"role": "user", "content": f"q{i}"}],
             "chosen": {"answer": f"good {i}"}, "reject": {"answer": f"bad {i}"},
             "category_path": f"Pairwise_set/{'Helpfulness' if i == 0 else 'Harmlessness'}/Chat/x"} for i in range(4)]  # fmt: skip
    exs = records(convert_rmb, recs)
    rng = random.Random(0)
    outs = [vote_of(e, [[9 if (r.startswith("good")) == (e.meta["uid"] == "p0") else 1 for r in e.responses]], rng) for e in exs]
    r = score(outs)
    assert r["benchmark"] == "rmb"
    assert r["accuracy"] == 0.25 == rmb_official.acc([rmb_official_result(o) for o in outs])
    assert r["set_mean"] == 0.5 and r["sets"] == {"harmlessness/pairwise": 0.0, "helpfulness/pairwise": 1.0}
    assert headline(outs, "rmb") == 0.25


# ---------------------------------------------------------------- JudgeBench

JB_SOURCES = ("mmlu-pro-law", "mmlu-pro-math", "livebench-reasoning", "livebench-math", "livecodebench")


def jb_decision(scores: list[int] | None) -> str | None:
    """The decision of one presentation, in its presented terms: slot A first."""
    if scores is None:
        return None
    a, b = scores
    return "A>B" if a > b else "B>A" if b > a else "A=B"


def jb_judgment(rng: random.Random, decision: str | None) -> dict | None:
    # An unparsed judgment: {"decision": None} (a judge that read nothing), or None (the judge raised).
    if decision is None and rng.random() < 0.5:
        return None
    return {"decision": decision}


@pytest.mark.parametrize("seed", SEEDS)
def test_judgebench_equals_compute_final_metrics(seed):
    rng = random.Random(f"jb:{seed}")
    recs = [{"pair_id": f"p{i}", "question": f"q{i}", "response_A": f"A{i}", "response_B": f"B{i}",
             "label": rng.choice(["A>B", "B>A"]), "source": rng.choice(JB_SOURCES)} for i in range(rng.randint(1, 20))]  # fmt: skip
    exs = records(convert_judgebench, recs)
    two, single, pairs2, pairs1 = [], [], [], []
    for rec, e in zip(recs, exs):
        # Both orders (greedy rotations): original order (A, B), then (B, A). Scores come back in the
        # original order; the second presentation's decision is in swapped terms, as run_judge.py stores it.
        first, second = random_samples(rng, 2, 2, 1, 3, 0.2)
        two += [vote_of(e, [first], rng), vote_of(e, [second], rng)]
        swapped = None if second is None else [second[1], second[0]]
        pairs2.append({**rec, "judgments": [jb_judgment(rng, jb_decision(first)), jb_judgment(rng, jb_decision(swapped))]})
        # One voted judgment (Voting@k): the --single_game protocol.
        voted = vote_of(e, random_samples(rng, 2, 3, 1, 3, 0.3), rng)
        single.append(voted)
        pairs1.append({**rec, "judgments": [{"decision": jb_decision(voted.totals if voted.used else None)}]})
    r = score(two, "judgebench")
    official = jb_official.report(pairs2, reverse_order=True)
    assert r["accuracy"] == pytest.approx(official["Overall"])
    assert r["inconsistent"] == pytest.approx(jb_official.inconsistency(pairs2))
    assert r["protocol_official"] is True and r["protocol"].startswith("two orders")
    # run_judge.py's per-source lines: mmlu-pro (both mmlu-pro-* sources) is spct's "knowledge", etc.
    for prefix, cat in JUDGEBENCH_CATEGORIES.items():
        if prefix in official:
            assert r["categories"][cat] == pytest.approx(official[prefix])
    same_headline(two, r)
    s = score(single, "judgebench")
    assert s["accuracy"] == pytest.approx(jb_official.report(pairs1, reverse_order=False)["Overall"])
    assert s["protocol_official"] is False and "NOT the official" in s["protocol"] and "inconsistent" not in s


def test_judgebench_one_order_right_one_tied_is_right_and_missing_differs_from_tie():
    recs = [{"pair_id": f"p{i}", "question": "q", "response_A": f"A{i}", "response_B": f"B{i}", "label": "A>B", "source": "livebench-math"}
            for i in range(3)]  # fmt: skip
    exs = records(convert_judgebench, recs)
    rng = random.Random(0)
    # p0: right, tie -> +1 (right) ; p1: right, unparsed -> +1 (right) ; p2: tie, unparsed -> 0 (miss)
    plan = [([9, 1], [5, 5]), ([9, 1], None), ([5, 5], None)]
    outs = [vote_of(e, [s], rng) for e, (a, b) in zip(exs, plan) for s in (a, b)]
    pairs = [{**rec, "judgments": [{"decision": jb_decision(a)}, {"decision": jb_decision(b and b[::-1])}]} for rec, (a, b) in zip(recs, plan)]
    r = score(outs)
    assert r["accuracy"] == pytest.approx(2 / 3) == pytest.approx(jb_official.report(pairs)["Overall"])
    # decision1 != decision2 for every pair: "A=B" is not None.
    assert r["inconsistent"] == 1.0 == jb_official.inconsistency(pairs)


# ---------------------------------------------------------------- the judging path: scores back in original order


class ScriptedEngine:
    """An engine whose "model" reads the responses in the judge prompt and writes a real critique ending
    in ``Scores: \\boxed{...}``, each response scored by its text, wherever it is shown."""

    def __init__(self, scores: dict[str, int]):
        self.scores = scores
        self.tokenizer = SimpleNamespace()  # no chat template, no special tokens
        self.prompts: list[str] = []

    def render(self, chat):
        return "\n\n".join(m["content"] for m in chat)

    def generate(self, prompts, params, n=1, progress=False):
        import re

        from spct.engine.sampler import Generation

        out = []
        for p in prompts:
            self.prompts.append(p)
            shown = re.findall(r"^\[Response (\d+) start\]\n(.*?)\n\[Response \1 end\]$", p, re.M | re.S)
            assert [int(i) for i, _ in shown] == list(range(1, len(shown) + 1)) and shown
            given = [self.scores[text] for _, text in shown]
            text = ("Specific Criteria:\n- Correctness (100%)\nAnalysis: " + " ".join(f"Response {i} earns {s}." for i, s in enumerate(given, 1))
                    + f"\nScores: \\boxed{{{', '.join(map(str, given))}}}")  # fmt: skip
            out.append([Generation(text, len(p), list(range(len(text))), True)])
        return out


def test_scores_map_back_to_the_original_order_through_the_judging_path():
    # Three responses shown in every rotation (two of them 3-cycles, which are not their own inverse)
    # and in seeded shuffles: whatever the order, each response must get its own score back, the vote
    # must sum them in the original order, and the harness must score the item right.
    from spct.engine import SamplingParams
    from spct.evaluate.harness import per_order, voted
    from spct.grm.judge import JudgeItem, judge, rotations
    from spct.types import user

    responses = ["Paris is in Germany.", "Paris is the capital of France.", "Paris is a city."]
    own = [2, 9, 5]
    engine = ScriptedEngine(dict(zip(responses, own)))
    ex = Example(id="geo", source="generic", category="geo", messages=[user("Where is Paris?")], responses=responses, best=1)
    greedy = judge(engine, [JudgeItem(ex.messages, responses, orders=rotations(3))], SamplingParams(temperature=0.0))[0]
    assert [s.perm for s in greedy.samples] == [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    for s in greedy.samples:
        assert s.result.scores == [own[i] for i in s.perm]  # what the model wrote, in presented order
        assert s.scores == own  # mapped back
    assert greedy.verdict.totals == [3 * v for v in own] and greedy.verdict.best == 1
    sampled = judge(engine, [JudgeItem(ex.messages, responses, k=6)], SamplingParams(temperature=0.5, seed=1))[0]
    assert any(p[p[p[0]]] == 0 and p[0] != 0 for p in (s.perm for s in sampled.samples))  # a 3-cycle among the shuffles
    assert all(s.scores == own for s in sampled.samples) and sampled.verdict.totals == [6 * v for v in own]
    # Through the harness: every rotation's outcome and the Voting@6 outcome name response 1.
    outs = per_order([ex], [greedy.item.key], [greedy.samples], seed=0).outcomes
    assert [o.totals for o in outs] == [own] * 3 and score(outs)["accuracy"] == 1.0
    v = voted([ex], [sampled.item.key], [sampled.samples], 6, seed=0).outcomes
    assert v[0].totals == [6 * x for x in own] and score(v)["accuracy"] == 1.0
