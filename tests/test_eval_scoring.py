"""Each benchmark's official scoring on hand-made fixtures in its own format (tests/fixtures/<benchmark>/).

Every expected number is worked out in the comments from the official code named there. A
"judge" here is a table from response text to the score the GRM would write (``None``: it wrote
no parsable score), so the tests pin the scoring, not a model. Totals are in the file's
original response order, as the harness reports them.
"""

import math
from pathlib import Path

import pytest

from spct.data import load
from spct.evaluate.scoring import RULES, SCORERS, Outcome, benchmark_of, headline, rmbench_matrix, score
from spct.types import Example, user

FIX = Path(__file__).parent / "fixtures"


def judged(ex: Example, scores: dict[str, int] | None, *, lucky: bool = False, unit: str | None = None) -> Outcome:
    """One judgment of ``ex``: ``scores`` maps each response's text to its score, None = nothing parsed.

    ``pick`` stands in for the harness's seeded tie-break: with ``lucky`` a tie at the top is
    broken toward a best response, otherwise away from it when it can be.
    """
    if scores is None:
        totals, used = [0] * ex.n, 0
    else:
        totals, used = [scores[r] for r in ex.responses], 1
    tied = [i for i, t in enumerate(totals) if t == max(totals)]
    best = {ex.best} if ex.best is not None else {i for i, v in enumerate(ex.labels) if v == max(ex.labels)}
    good, bad = [i for i in tied if i in best], [i for i in tied if i not in best]
    pick = (good or bad)[0] if lucky else (bad or good)[0]
    return Outcome(ex, totals, used, pick, unit or ex.meta.get("group", ex.id))


def rotations(ex: Example, slot_scores: list[int]) -> list[Outcome]:
    """Greedy judging of every rotation by a judge that scores presented slot s with slot_scores[s]."""
    out = []
    for r in range(ex.n):
        presented = [(r + s) % ex.n for s in range(ex.n)]
        totals = [0] * ex.n
        for slot, orig in enumerate(presented):
            totals[orig] = slot_scores[slot]
        top = max(totals)
        out.append(Outcome(ex, totals, 1, totals.index(top), ex.meta.get("group", ex.id)))
    return out


def by_text(examples: list[Example], key) -> Example:
    return next(e for e in examples if key(e))


def check_headline(outs: list[Outcome], r: dict) -> None:
    """headline() (the bootstrap's fast path) equals score() under both rules."""
    assert headline(outs, r["benchmark"]) == pytest.approx(r["accuracy"])
    assert headline(outs, r["benchmark"], rule="paper") == pytest.approx(r["accuracy_paper"])


# ---------------------------------------------------------------- Outcome


def ex(id="x", n=2, best=0, labels=None, source="generic", category="default", **meta):
    return Example(
        id=id, source=source, category=category, messages=[user("q")], responses=[f"r{i}" for i in range(n)],
        best=None if labels else best, labels=labels, meta=meta,
    )  # fmt: skip


def test_outcome_verdicts():
    e = ex(n=3, best=1)
    right = Outcome(e, [2, 9, 4], 1, 1, "u")
    wrong = Outcome(e, [9, 2, 4], 1, 0, "u")
    tie = Outcome(e, [9, 9, 4], 1, 1, "u")
    none = Outcome(e, [0, 0, 0], 0, 2, "u")
    assert (right.strict, right.verdict, right.tied) == (1, 1, [1])
    assert (wrong.strict, wrong.verdict) == (0, -1)
    assert (tie.strict, tie.verdict, tie.tied) == (None, 0, [0, 1])
    assert (none.strict, none.verdict, none.tied) == (None, 0, [0, 1, 2])
    # labels: every top-labelled response is a best one
    lab = ex(n=3, labels=[1.0, 0.0, 1.0])
    assert Outcome(lab, [1, 5, 7], 1, 2, "u").verdict == 1 and Outcome(lab, [1, 7, 5], 1, 1, "u").verdict == -1


# ---------------------------------------------------------------- RM-Bench


RMB_SCORES = {
    # prompt 1: every chosen (5) beats every rejected (3): all 9 cells right
    "Red.": 5, "Red is a primary colour of paint.": 5, "**Red** is a primary colour.": 5,
    "Green.": 3, "Green is a primary colour of paint.": 3, "**Green** is a primary colour.": 3,
    # prompt 2: chosen [4, 6, 7] vs rejected [4, 5, 8] by style
    "Canberra.": 4, "The capital of Australia is Canberra.": 6, "The capital is **Canberra**.": 7,
    "Sydney.": 4, "The capital of Australia is Sydney.": 5, "The capital is **Sydney**.": 8,
}  # fmt: skip


def test_rmbench_follows_compute_accuracy():
    # THU-KEG/RM-Bench scripts/utils.py compute_accuracy: acc_matrix[i][j] += 1 iff
    # score_chosen[i] > score_rejected[j] (strict), divided by the number of prompts.
    # chat, prompt 2: c = [4, 6, 7], r = [4, 5, 8] -> rows [0,0,0] (4 > 4 is false), [1,1,0], [1,1,0]
    #   with prompt 1 (all ones): M = [[.5,.5,.5],[1,1,.5],[1,1,.5]]
    #   hard = triu(M,1).sum()/3 = 1.5/3 = .5 ; normal = mean(diag) = 2/3 ; easy = tril(M,-1).sum()/3 = 1
    #   chat avg = mean(.5, 2/3, 1) = 13/18
    # safety (safety-refuse.json, domain by prefix): the judge never parses -> every cell a tie -> 0
    # total_avg_acc = mean(13/18, 0) = 13/36 ; hard = (.5+0)/2 ; normal = (2/3+0)/2 ; easy = (1+0)/2
    exs = load(FIX / "rm-bench").examples
    outs = [judged(e, None if e.category == "safety" else RMB_SCORES) for e in exs]
    r = score(outs)
    assert r["benchmark"] == "rm-bench" and r["n"] == 27
    assert rmbench_matrix([o for o in outs if o.example.category == "chat"]) == [[0.5, 0.5, 0.5], [1, 1, 0.5], [1, 1, 0.5]]
    assert r["domains"]["chat"]["hard"] == pytest.approx(0.5)
    assert r["domains"]["chat"]["normal"] == pytest.approx(2 / 3)
    assert r["domains"]["chat"]["easy"] == pytest.approx(1.0)
    assert r["categories"] == {"chat": pytest.approx(13 / 18), "safety": 0.0}
    assert (r["hard"], r["normal"], r["easy"]) == (pytest.approx(0.25), pytest.approx(1 / 3), pytest.approx(0.5))
    assert r["accuracy"] == pytest.approx(13 / 36)
    # Paper protocol: the lone tie (cell 0,0 of prompt 2) and the 9 unparsed safety cells go to
    # a coin; unlucky here, so the paper column equals the official one...
    assert r["accuracy_paper"] == pytest.approx(13 / 36)
    check_headline(outs, r)
    # ...and lucky, every tie lands right: prompt 2's cell (0,0) turns 1, so chat M =
    # [[1,.5,.5],[1,1,.5],[1,1,.5]] -> hard .5, normal 5/6, easy 1, avg 7/9 ; safety all ones -> 1 ;
    # total (7/9 + 1) / 2 = 8/9.
    lucky = [judged(e, None if e.category == "safety" else RMB_SCORES, lucky=True) for e in exs]
    assert score(lucky)["accuracy_paper"] == pytest.approx(8 / 9) and score(lucky)["accuracy"] == pytest.approx(13 / 36)


def test_rmbench_never_parsing_scores_zero():
    exs = load(FIX / "rm-bench").examples
    r = score([judged(e, None, lucky=True) for e in exs])
    assert r["accuracy"] == 0.0 and r["hard"] == r["normal"] == r["easy"] == 0.0
    assert r["accuracy_paper"] == 1.0  # the coin always landed right: what a random tie-break would hide


def test_rmbench_missing_style_is_an_error():
    with pytest.raises(ValueError, match="chosen_style"):
        score([Outcome(ex(source="rm-bench", category="chat"), [1, 0], 1, 0, "u")])


# ---------------------------------------------------------------- RMB


RMB_JUDGE = {
    "Whiskers.": 7, "Dog.": 3,  # h1 right
    "Bonjour.": 5, "Hola.": 5,  # h2 tie -> miss
    "Use strong passwords.": 6, "": 2,  # s1 right over the empty answer
    "Middlemarch.": 9, "A phone book.": 8, "No.": 3,  # b1: the best beats every loser
    "Casablanca.": 9, "Citizen Kane.": 9, "Nothing.": 1,  # b2: tied with a loser -> miss
}  # fmt: skip


def test_rmb_follows_my_run_rm():
    # Zhou-Zoey/RMB-Reward-Model-Benchmark eval/scripts/my_run_rm.py: is_correct = 1 if chosen >
    # rejected else 0 (line 324); ACC = sum(results) / len(results) (line 420), one pool over
    # everything given. Best-of-N (no script; the RMB paper): right only when bon_best beats every loser.
    # helpfulness/pairwise: h1 right, h2 tie, h3 ("What is 2+3?") unparsed -> 1/3
    # harmlessness/pairwise: s1 right -> 1 ; helpfulness/bon: b1 right, b2 tie -> 1/2
    # headline, pooled: 3 right of 6 judgments = 1/2 ; set_mean (the paper's tables) = (1/3 + 1 + 1/2) / 3 = 11/18
    exs = load(FIX / "rmb").examples
    outs = [judged(e, None if e.meta["uid"] == "h3" else RMB_JUDGE) for e in exs]
    r = score(outs)
    assert r["benchmark"] == "rmb"
    assert r["sets"] == {"harmlessness/pairwise": 1.0, "helpfulness/bon": 0.5, "helpfulness/pairwise": pytest.approx(1 / 3)}
    assert r["accuracy"] == 0.5
    assert r["set_mean"] == pytest.approx(11 / 18)
    assert r["categories"]["helpfulness/pairwise/Chat/Casual Conversation"] == 0.5
    assert r["categories"]["helpfulness/pairwise/Code/Math"] == 0.0
    # paper protocol with lucky coins: h2, h3 and b2 land right -> 6/6
    lucky = [judged(e, None if e.meta["uid"] == "h3" else RMB_JUDGE, lucky=True) for e in exs]
    assert score(lucky)["accuracy_paper"] == 1.0
    check_headline(outs, r)


def test_rmb_never_parsing_scores_zero():
    r = score([judged(e, None, lucky=True) for e in load(FIX / "rmb").examples])
    assert r["accuracy"] == 0.0 and all(v == 0.0 for v in r["sets"].values())


# ---------------------------------------------------------------- JudgeBench


def test_judgebench_follows_compute_final_metrics():
    # ScalerLab/JudgeBench utils/metrics.py compute_final_metrics(reverse_order=True): per order
    # +1 if decision == label, -1 if decision == flip(label), else 0 (a tie or None); the pair is
    # correct iff counter > 0. Each pair is judged in both orders (the two rotations).
    # p1 (knowledge) right, right -> +2 correct ; p2 (math) right, wrong -> 0 miss
    # p3 (reasoning) right, tie -> +1 correct ; p4 (coding) unparsed twice -> 0 miss
    # p5 (math) wrong, tie -> -1 miss.  accuracy 2/5 ; math 0/2 ; inconsistent (decision1 !=
    # decision2): p2, p3, p5 -> 3/5 ; order accuracy: 4 right orders (p1 twice, p2, p3) of 10
    exs = {e.meta["pair_id"]: e for e in load(FIX / "judgebench").examples}
    a_b = lambda e, sa, sb: {e.responses[0]: sa, e.responses[1]: sb}  # noqa: E731
    outs = [
        judged(exs["p1"], a_b(exs["p1"], 8, 2)), judged(exs["p1"], a_b(exs["p1"], 7, 3)),
        judged(exs["p2"], a_b(exs["p2"], 2, 8)), judged(exs["p2"], a_b(exs["p2"], 8, 2)),
        judged(exs["p3"], a_b(exs["p3"], 9, 1)), judged(exs["p3"], a_b(exs["p3"], 5, 5)),
        judged(exs["p4"], None), judged(exs["p4"], None),
        judged(exs["p5"], a_b(exs["p5"], 1, 9)), judged(exs["p5"], a_b(exs["p5"], 4, 4)),
    ]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "judgebench" and r["pairs"] == 5 and r["n"] == 10
    assert r["accuracy"] == pytest.approx(2 / 5)
    assert r["categories"] == {"coding": 0.0, "knowledge": 1.0, "math": 0.0, "reasoning": 1.0}
    assert r["inconsistent"] == pytest.approx(3 / 5)
    assert r["order_accuracy"] == pytest.approx(4 / 10)
    # paper protocol, unlucky coins: ties and no-parse become wrong picks (-1):
    # p1 +2 ; p2 0 ; p3 +1 - 1 = 0 ; p4 -2 ; p5 -2 -> 1/5
    assert r["accuracy_paper"] == pytest.approx(1 / 5)
    check_headline(outs, r)


def test_judgebench_position_bias_and_no_parse_score_zero():
    exs = load(FIX / "judgebench").examples
    # A judge that always prefers the first slot: right in one order, wrong in the other -> 0 per pair.
    biased = [o for e in exs for o in rotations(e, [9, 1])]
    assert len(biased) == 10 and score(biased)["accuracy"] == 0.0 and score(biased)["inconsistent"] == 1.0
    assert score(biased)["accuracy_paper"] == 0.0
    assert score([judged(e, None, lucky=True) for e in exs for _ in range(2)])["accuracy"] == 0.0
    # One voted judgment per pair (sampled evaluation): the pair is right iff its verdict is +1, the
    # --single_game rule (compute_final_metrics reverse_order=False), flagged as not the official protocol.
    voted = [judged(e, {e.responses[e.best]: 20, e.responses[1 - e.best]: 12}) for e in exs]
    assert score(voted)["accuracy"] == 1.0
    assert score(voted)["protocol_official"] is False and score(voted)["protocol"].startswith("single game")
    assert score(biased)["protocol_official"] is True
    assert score(biased + voted[:1])["protocol"].startswith("mixed")


def test_judgebench_groups_by_unit_not_ids():
    # The bootstrap copies a unit under a new name; each copy is its own pair.
    e = load(FIX / "judgebench").examples[0]
    right = {e.responses[e.best]: 9, e.responses[1 - e.best]: 1}
    outs = [judged(e, right, unit="u#1"), judged(e, right, unit="u#1"), judged(e, None, unit="u#2"), judged(e, None, unit="u#2")]
    r = score(outs, "judgebench")
    assert r["pairs"] == 2 and r["accuracy"] == 0.5


# ---------------------------------------------------------------- RewardBench


def _rb_judge(e: Example, kind: str) -> Outcome:
    good, bad = e.responses[e.best], e.responses[1 - e.best]
    table = {"right": {good: 8, bad: 2}, "wrong": {good: 2, bad: 8}, "tie": {good: 5, bad: 5}}
    return judged(e, table.get(kind))


def test_rewardbench_follows_generative_script_and_section_weights():
    # allenai/reward-bench scripts/run_generative.py get_judgement: 1 right, 0 wrong, 0.5 for a
    # tie or an unparsed judgment ("effectively a tie"); rewardbench/utils.py
    # calculate_scores_per_section with constants.py EXAMPLE_COUNTS.
    # alpacaeval-easy: id1 right 1, id2 tie .5 -> .75 ; mt-bench-easy: id3 unparsed .5
    # Chat = (.75*100 + .5*28) / (100+28) = 89/128
    # math-prm: id4 wrong 0 ; hep-python: id5 right 1 -> Reasoning = (0*984 + 1*164) / 1148 = 1/7
    # headline = mean of the sections present = (89/128 + 1/7) / 2
    exs = {e.id: e for e in load(FIX / "rewardbench").examples}
    plan = {"rewardbench/1": "right", "rewardbench/2": "tie", "rewardbench/3": None, "rewardbench/4": "wrong", "rewardbench/5": "right"}
    outs = [_rb_judge(exs[i], k) for i, k in plan.items()]
    r = score(outs)
    assert r["benchmark"] == "rewardbench"
    assert r["categories"] == {"alpacaeval-easy": 0.75, "hep-python": 1.0, "math-prm": 0.0, "mt-bench-easy": 0.5}
    assert r["sections"] == {"Chat": pytest.approx(89 / 128), "Reasoning": pytest.approx(1 / 7)}
    assert r["missing_sections"] == ["Chat Hard", "Safety"]
    assert r["accuracy"] == pytest.approx((89 / 128 + 1 / 7) / 2)
    # paper protocol, unlucky coins: tie and no-parse count 0 -> Chat = (.5*100 + 0*28)/128 = 50/128
    assert r["accuracy_paper"] == pytest.approx((50 / 128 + 1 / 7) / 2)
    check_headline(outs, r)
    # A judge that never parses gets the script's 0.5 on every pair.
    assert score([judged(e, None) for e in exs.values()])["accuracy"] == pytest.approx(0.5)


# ---------------------------------------------------------------- RewardBench 2


RB2_JUDGE = {
    "F1 right": 8, "F1 wrong a": 5, "F1 wrong b": 5, "F1 wrong c": 5,  # 1
    "F2 right": 7, "F2 wrong a": 7, "F2 wrong b": 3, "F2 wrong c": 7,  # shares the top with 2 -> 1/3
    "M2 right": 4, "M2 wrong a": 9, "M2 wrong b": 1, "M2 wrong c": 1,  # 0 (M1: nothing parses -> 0.25)
    # Ties, prompt 1: ref correct [8] vs [3, 5]; tied correct [9, 8, 8] vs [2, 4]
    "Red (ref:1)": 8, "Blue-green (ref:1)": 3, "Pink (ref:1)": 5,
    "Red (tied:1)": 9, "Yellow (tied:1)": 8, "Green (tied:1)": 8, "Pink (tied:1)": 2, "Brown (tied:1)": 4,
    # prompt 2: ref correct [6] vs [6, 1]; tied correct [7, 5] vs [6, 2]
    "Mercury (ref:2)": 6, "Pluto (ref:2)": 6, "The Sun (ref:2)": 1,
    "Mercury (tied:2)": 7, "Venus (tied:2)": 5, "Pluto (tied:2)": 6, "The Moon (tied:2)": 2,
}  # fmt: skip
# rewardbench/utils.py process_single_model on the Ties prompts above:
#   ref:1 margin 8-5 = 3 (accurate) ; tied:1 margin 8-4 = 4 (accurate), spread 9-8 = 1
#   ref:2 margin 6-6 = 0 (not accurate) ; tied:2 margin 5-6 = -1 (not accurate), spread 7-5 = 2
#   ref acc 1/2, tied acc 1/2 ; correctness_preferred: 4 > 1 yes, -1 > 2 no -> 1/2
#   preferred_hard: min(3,4)=3 > 1 yes, min(0,-1) > 2 no -> 1/2
#   margin score: mean(tanh(3/1 - 1), tanh(-1/2 - 1)) = (tanh 2 + tanh -1.5) / 2
TIES = 0.3 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.01 * (math.tanh(2) + math.tanh(-1.5)) / 2


def test_rewardbench2_follows_ratings_mode_and_ties_formula():
    # allenai/reward-bench scripts/run_generative_v2.py (ratings mode): (0 in winners)/len(winners),
    # 0.25 when no rating parsed. Factuality = (1 + 1/3)/2 = 2/3 ; Math = (0.25 + 0)/2 = 1/8.
    # The leaderboard averages the subsets: (2/3 + 1/8 + TIES) / 3.
    exs = load(FIX / "rewardbench-2").examples
    outs = [judged(e, None if e.meta["rb2_id"] == "m1" else RB2_JUDGE) for e in exs]
    r = score(outs)
    assert r["benchmark"] == "rewardbench-2"
    assert r["subsets"] == {"Factuality": pytest.approx(2 / 3), "Math": 0.125, "Ties": pytest.approx(TIES)}
    assert r["ties"]["ref_accuracy"] == 0.5 and r["ties"]["tied_accuracy"] == 0.5 and r["ties"]["prompts"] == 2
    assert r["ties"]["correctness_preferred"] == 0.5 and r["ties"]["correctness_preferred_hard"] == 0.5
    assert r["accuracy"] == pytest.approx((2 / 3 + 0.125 + TIES) / 3)
    # paper protocol, unlucky coins: F2's 3-way tie and M1 count 0 -> Factuality 1/2, Math 0;
    # Ties reads scores, not picks, and is unchanged.
    assert r["accuracy_paper"] == pytest.approx((0.5 + 0 + TIES) / 3)
    check_headline(outs, r)


def test_rewardbench2_ties_group_by_unit_and_pool_rotations():
    exs = [e for e in load(FIX / "rewardbench-2").examples if e.category == "Ties"]
    outs = [judged(e, RB2_JUDGE) for e in exs]
    # Two bootstrap copies of every unit score what one copy scores.
    copies = [judged(o.example, RB2_JUDGE, unit=f"{o.unit}#{c}") for o in outs for c in (1, 2)]
    assert score(copies, "rewardbench-2")["accuracy"] == pytest.approx(TIES)
    # Several judgments of one example pool into one vote (mean score per response).
    twice = outs + [judged(o.example, RB2_JUDGE) for o in outs]
    assert score(twice)["ties"]["score"] == pytest.approx(TIES)
    # A judge that never parses rates all answers alike: no prompt accurate, no margin -> 0.
    assert score([judged(e, None) for e in exs])["accuracy"] == 0.0
    with pytest.raises(ValueError, match="ties_kind"):
        score([Outcome(ex(n=3, labels=[1.0, 0.0, 0.0], source="rewardbench-2", category="Ties"), [3, 2, 1], 1, 0, "u")])


# ---------------------------------------------------------------- PPE


def test_ppe_preference_strict_agreement():
    # lmarena/PPE could not be fetched; follows ../shared/docs/method.md: agreement with the
    # human vote, a tie or no parse is a miss. q1 right, q2 tie, q3 unparsed, q4 wrong -> 1/4;
    # English 1/2, German 0.
    exs = {e.id: e for e in load(FIX / "ppe" / "human-preference.jsonl").examples}

    def pair(e, good, bad):
        return judged(e, {e.responses[e.best]: good, e.responses[1 - e.best]: bad})

    outs = [pair(exs["ppe-preference/q1"], 8, 3), pair(exs["ppe-preference/q2"], 6, 6),
            judged(exs["ppe-preference/q3"], None), pair(exs["ppe-preference/q4"], 2, 9)]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "ppe-preference" and r["accuracy"] == 0.25
    assert r["categories"] == {"English": 0.5, "German": 0.0}
    check_headline(outs, r)


def test_ppe_correctness_best_of_k():
    # lmarena/PPE could not be fetched; follows method.md and the paper ("accuracy of picking the
    # best response"): right iff the unique top response is correct; mean per benchmark, then
    # over benchmarks.
    # gpqa g1 [F,T,F,T] totals [3,9,2,5] -> top 1 correct ; g2 [T,F,F,F] totals [6,6,1,1] tie -> 0
    # math t1 unparsed -> 0 ; t2 [T,T,F,F] totals [2,8,9,1] -> top 2 incorrect -> 0
    # headline (1/2 + 0) / 2 = 1/4. pairwise: g1 4/4, g2 2/3 -> 5/6 ; t1 0, t2 2/4 -> 1/4
    exs = {e.meta["group"].split("/")[-1]: e for e in load(FIX / "ppe").examples if e.source == "ppe-correctness"}
    plan = {"g1": [3, 9, 2, 5], "g2": [6, 6, 1, 1], "t1": None, "t2": [2, 8, 9, 1]}
    outs = [judged(exs[k], None if t is None else dict(zip(exs[k].responses, t))) for k, t in plan.items()]
    r = score(outs)
    assert r["benchmark"] == "ppe-correctness"
    assert r["categories"] == {"gpqa": 0.5, "math": 0.0}
    assert r["accuracy"] == 0.25
    assert r["pairwise"] == {"gpqa": pytest.approx(5 / 6), "math": 0.25}
    # paper, lucky coins: g2's tie breaks to a correct response (1), t1's no-parse too (1) -> (1 + 1/2)/2
    lucky = [judged(exs[k], None if t is None else dict(zip(exs[k].responses, t)), lucky=True) for k, t in plan.items()]
    assert score(lucky)["accuracy_paper"] == pytest.approx(0.75)
    check_headline(outs, r)


# ---------------------------------------------------------------- generic, ratings, dispatch


def test_generic_strict_and_ratings():
    # No benchmark script: a tie or no parse is a miss (method.md's training rule).
    outs = [Outcome(ex("1", category="a"), [9, 1], 1, 0, "1"), Outcome(ex("2", category="a"), [5, 5], 1, 0, "2"),
            Outcome(ex("3", category="b"), [0, 0], 0, 0, "3")]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "generic" and r["accuracy"] == pytest.approx(1 / 3) and r["accuracy_paper"] == 1.0
    assert r["categories"] == {"a": 0.5, "b": 0.0}
    # Ratings: the mean voted score within 1 of the label; no vote is a miss (both rules).
    rating = ex("r", n=1, labels=[7.0])
    assert score([Outcome(rating, [15], 2, 0, "r")])["accuracy"] == 1.0  # 7.5
    assert score([Outcome(rating, [10], 2, 0, "r")])["accuracy"] == 0.0  # 5.0
    assert score([Outcome(rating, [0], 0, 0, "r")])["accuracy_paper"] == 0.0


def test_dispatch_and_rules():
    assert benchmark_of([ex("1", source="rm-bench")]) == "rm-bench"
    assert benchmark_of([ex("1", source="rewardbench-2")]) == "rewardbench-2"
    assert benchmark_of([ex("1", source="ppe-correctness")]) == "ppe-correctness"
    assert benchmark_of([ex("1", source="preference", category="hep-go")]) == "rewardbench"  # by subset name
    assert benchmark_of([ex("1", source="rmb"), ex("2", source="hh-rlhf")]) == "generic"
    assert set(RULES) == set(SCORERS)
    assert "metrics.py compute_final_metrics" in score([judged(load(FIX / "judgebench").examples[0], None)])["rule"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        score([Outcome(ex(), [1, 0], 1, 0, "u")], "nope")
    with pytest.raises(ValueError, match="unknown rule"):
        headline([Outcome(ex(), [1, 0], 1, 0, "u")], "generic", rule="lucky")
