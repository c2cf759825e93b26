"""Each benchmark's scorer against small outcome lists whose numbers are worked out by hand."""

import pytest

from spct.evaluate.scoring import Outcome, benchmark_of, rmbench_matrix, score, score_generic
from spct.types import Example, user


def ex(id, source="generic", category="default", n=2, best=0, labels=None, **meta):
    return Example(
        id=id, source=source, category=category, messages=[user("q")], responses=[f"r{i}" for i in range(n)],
        best=None if labels else best, labels=labels, meta=meta,
    )  # fmt: skip


def out(example, picked, totals=None):
    totals = totals or [0] * example.n
    return Outcome(example, totals, picked, [picked])


def rmb_cell(pid, i, j, right, domain="chat"):
    e = ex(f"rm-bench/{domain}/{pid}/c{i}r{j}", "rm-bench", domain, domain=domain, chosen_style=i, rejected_style=j)
    return out(e, 0 if right else 1)


def test_rmbench_follows_official_compute_accuracy():
    # Follows THU-KEG/RM-Bench scripts/utils.py compute_accuracy (+ the total_dataset.json branch).
    # chat: 2 prompts. Prompt 1 wins every cell; prompt 2 wins only the diagonal and the lower-left.
    #   M = [[1, .5, .5], [1, 1, .5], [1, 1, 1]]
    #   hard = (.5 + .5 + .5) / 3 = .5 ; normal = 1 ; easy = 1 ; avg = 2.5 / 3
    # code: 1 prompt that wins only cell (0,0): M = [[1,0,0],[0,0,0],[0,0,0]]
    #   hard = 0 ; normal = 1/3 ; easy = 0 ; avg = 1/9
    chat = [rmb_cell(1, i, j, True) for i in range(3) for j in range(3)]
    chat += [rmb_cell(2, i, j, j <= i) for i in range(3) for j in range(3)]
    code = [rmb_cell(1, i, j, (i, j) == (0, 0), "code") for i in range(3) for j in range(3)]
    r = score(chat + code)
    assert r["benchmark"] == "rm-bench"
    assert rmbench_matrix(chat) == [[1, 0.5, 0.5], [1, 1, 0.5], [1, 1, 1]]
    assert r["domains"]["chat"]["hard"] == pytest.approx(0.5)
    assert r["domains"]["chat"]["normal"] == pytest.approx(1.0)
    assert r["domains"]["chat"]["easy"] == pytest.approx(1.0)
    assert r["domains"]["code"]["normal"] == pytest.approx(1 / 3)
    # overall hard = mean over domains = (.5 + 0) / 2 ; normal = (1 + 1/3) / 2 ; easy = (1 + 0) / 2
    assert r["hard"] == pytest.approx(0.25)
    assert r["normal"] == pytest.approx(2 / 3)
    assert r["easy"] == pytest.approx(0.5)
    # total_avg_acc = mean of domain averages = (2.5/3 + 1/9) / 2 = 17/36
    assert r["accuracy"] == pytest.approx(17 / 36)
    assert r["categories"] == {"chat": pytest.approx(2.5 / 3), "code": pytest.approx(1 / 9)}


def test_rmbench_cells_without_data_stay_out_of_the_means():
    # One prompt with only cells (0,0) right, (0,1) wrong, (1,0) right:
    # hard = (0,1) only = 0 ; normal = (0,0) only = 1 ; easy = (1,0) only = 1 ; avg = 2/3
    r = score([rmb_cell(1, 0, 0, True), rmb_cell(1, 0, 1, False), rmb_cell(1, 1, 0, True)])
    assert (r["hard"], r["normal"], r["easy"]) == (0.0, 1.0, 1.0)
    assert r["domains"]["chat"]["matrix"][2] == [None, None, None]
    assert r["accuracy"] == pytest.approx(2 / 3)


def test_rmbench_missing_style_is_an_error():
    with pytest.raises(ValueError, match="chosen_style"):
        score([out(ex("x", "rm-bench", "chat"), 0)])


def jb(pair, order, right, category="math"):
    best = 0 if order == "AB" else 1
    e = ex(f"{pair}:{order}", "judgebench", category, best=best, pair_id=pair, order=order)
    return out(e, best if right else 1 - best)


def test_judgebench_follows_official_compute_final_metrics():
    # Follows ScalerLab/JudgeBench utils/metrics.py compute_final_metrics(reverse_order=True):
    # counter = (#orders right) - (#orders wrong); correct iff counter > 0.
    # p1 math: right, right -> +2 correct ; p2 math: right, wrong -> 0 (inconsistent) not correct
    # p3 coding: wrong, wrong -> -2 ; p4 coding: only AB judged, right -> +1 correct (missing order = 0)
    # overall 2/4 ; math 1/2 ; coding 1/2 ; inconsistent 1/4 ; order accuracy 4/7
    outs = [jb("p1", "AB", True), jb("p1", "BA", True), jb("p2", "AB", True), jb("p2", "BA", False),
            jb("p3", "AB", False, "coding"), jb("p3", "BA", False, "coding"), jb("p4", "AB", True, "coding")]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "judgebench"
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["categories"] == {"coding": pytest.approx(0.5), "math": pytest.approx(0.5)}
    assert r["inconsistent"] == pytest.approx(0.25)
    assert r["order_accuracy"] == pytest.approx(4 / 7)
    assert r["pairs"] == 4


def rmb(id, kind, path, right, n=2):
    e = ex(id, "rmb", path.split("/")[-1], n=n, best=0, kind=kind, category_path=path)
    return out(e, 0 if right else n - 1)


def test_rmb_pairwise_and_bon():
    # Pairwise follows Zhou-Zoey/RMB-Reward-Model-Benchmark eval/scripts/my_run_rm.py (mean is_correct);
    # BoN: right only when the picked response is bon_best (it must beat every loser).
    # helpfulness/pairwise: Chat/Casual 2 of 3 right -> 2/3
    # helpfulness/bon: Chat/Casual 1 of 2 (4 responses each) -> 1/2
    # harmlessness/pairwise: S1 1 of 1 -> 1
    # headline = mean of the three sets = (2/3 + 1/2 + 1) / 3 = 13/18
    p = "Pairwise_set/Helpfulness/Chat/Casual Conversation"
    b = "BoN_set/Helpfulness/Chat/Casual Conversation"
    outs = [rmb("a", "pairwise", p, True), rmb("b", "pairwise", p, True), rmb("c", "pairwise", p, False),
            rmb("d", "bon", b, True, 4), rmb("e", "bon", b, False, 4),
            rmb("f", "pairwise", "Pairwise_set/Harmlessness/S1", True)]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "rmb"
    assert r["sets"] == {
        "harmlessness/pairwise": pytest.approx(1.0),
        "helpfulness/bon": pytest.approx(0.5),
        "helpfulness/pairwise": pytest.approx(2 / 3),
    }
    assert r["accuracy"] == pytest.approx(13 / 18)
    assert r["categories"]["helpfulness/bon/Chat/Casual Conversation"] == pytest.approx(0.5)
    assert r["categories"]["harmlessness/pairwise/S1"] == pytest.approx(1.0)


def test_hh_rlhf_accuracy():
    # HH-RLHF harmless-base: fraction of pairs where the chosen wins. 3 of 4 -> 0.75.
    outs = [out(ex(f"h{i}", "hh-rlhf", best=i % 2), i % 2 if i < 3 else 1 - i % 2) for i in range(4)]
    r = score(outs)
    assert (r["benchmark"], r["accuracy"]) == ("hh-rlhf", 0.75)


def test_rewardbench_sections_follow_official_weights():
    # Follows allenai/reward-bench rewardbench/utils.py calculate_scores_per_section with
    # rewardbench/constants.py EXAMPLE_COUNTS / SUBSET_MAPPING.
    # alpacaeval-easy 1/2 (weight 100), mt-bench-easy 1/1 (weight 28): Chat = (50 + 28) / 128 = 78/128
    # math-prm 0/1 (984), hep-python 1/1 (164): Reasoning = 164 / 1148 = 1/7
    # headline = mean of the two sections present = (78/128 + 1/7) / 2
    outs = [out(ex("a1", category="alpacaeval-easy"), 0), out(ex("a2", category="alpacaeval-easy"), 1),
            out(ex("m1", category="mt-bench-easy"), 0), out(ex("p1", category="math-prm"), 1),
            out(ex("h1", category="hep-python"), 0)]  # fmt: skip
    r = score(outs)
    assert r["benchmark"] == "rewardbench"
    assert r["sections"] == {"Chat": pytest.approx(78 / 128), "Reasoning": pytest.approx(1 / 7)}
    assert r["accuracy"] == pytest.approx((78 / 128 + 1 / 7) / 2)
    assert r["categories"]["alpacaeval-easy"] == 0.5


def test_generic_accuracy_categories_and_labels():
    # a: 2/2 right ; b: 0/1 -> accuracy 2/3, categories a=1, b=0, category mean 1/2.
    # A labels-only item: right when the picked response has the top label (index 2 here).
    outs = [out(ex("1", category="a"), 0), out(ex("2", category="a", best=1), 1), out(ex("3", category="b"), 1)]
    r = score_generic(outs)
    assert r["accuracy"] == pytest.approx(2 / 3)
    assert r["categories"] == {"a": 1.0, "b": 0.0}
    assert r["category_mean"] == 0.5
    assert out(ex("l", n=3, labels=[1.0, 2.0, 5.0]), 2).correct
    assert not out(ex("l", n=3, labels=[1.0, 2.0, 5.0]), 1).correct


def test_dispatch_from_source():
    assert benchmark_of([ex("1", "rm-bench")]) == "rm-bench"
    assert benchmark_of([ex("1", "rmb")]) == "rmb"
    assert benchmark_of([ex("1", "judgebench")]) == "judgebench"
    assert benchmark_of([ex("1", "hh-rlhf")]) == "hh-rlhf"
    assert benchmark_of([ex("1", "builtin:verifiable", "math")]) == "generic"
    assert benchmark_of([ex("1", "rmb"), ex("2", "hh-rlhf")]) == "generic"
    with pytest.raises(ValueError, match="unknown benchmark"):
        score([out(ex("1"), 0)], "nope")
