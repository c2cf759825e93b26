"""Voting, ties, shuffling and strictness against hand-computed cases."""

import random
from collections import Counter

import pytest

from spct.grm import (
    default_k_meta,
    is_right_for_labels,
    is_strictly_right,
    meta_keep,
    meta_vote,
    permutation,
    pick_best,
    sample_rng,
    tied_best,
    to_original,
    vote,
)


def test_strict_rule_counts_ties_and_failures_as_wrong():
    assert is_strictly_right([9, 3], 0)
    assert not is_strictly_right([3, 9], 0)
    assert not is_strictly_right([9, 9], 0)  # tie is wrong in training
    assert not is_strictly_right([9, 9, 1], 1)
    assert is_strictly_right([2, 9, 8], 1)
    assert not is_strictly_right(None, 0)
    assert is_strictly_right([5], 0)  # a single response has no rival


def test_label_rule():
    assert is_right_for_labels([8, 3], [1.0, 0.0])
    assert not is_right_for_labels([3, 3], [1.0, 0.0])
    assert is_right_for_labels([7], [8.0]) and not is_right_for_labels([3], [8.0])


def test_shuffle_maps_back():
    # presented order shows original responses [2, 0, 1]; the model scored them 9, 2, 5
    assert to_original([9, 2, 5], [2, 0, 1]) == [2, 5, 9]
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 6)
        perm = permutation(n, rng)
        true = [rng.randint(1, 10) for _ in range(n)]
        presented = [true[i] for i in perm]
        assert to_original(presented, perm) == true
    with pytest.raises(ValueError):
        to_original([1, 2], [0])


def test_each_sample_gets_its_own_seeded_order():
    perms = [tuple(permutation(4, sample_rng(0, "item-1", j))) for j in range(16)]
    assert len(set(perms)) > 4  # orders differ across samples
    assert perms == [tuple(permutation(4, sample_rng(0, "item-1", j))) for j in range(16)]  # reproducible
    assert perms != [tuple(permutation(4, sample_rng(1, "item-1", j))) for j in range(16)]  # seed matters


def test_eval_tie_break_is_random_but_seeded():
    assert tied_best([7, 9, 9, 1]) == [1, 2]
    picks = Counter(pick_best([5, 5], random.Random(i)) for i in range(400))
    assert set(picks) == {0, 1} and 150 < picks[0] < 250
    assert pick_best([5, 5, 5], random.Random(3)) == pick_best([5, 5, 5], random.Random(3))
    assert pick_best([1, 8, 3], random.Random(0)) == 1


def test_vote_sums_and_counts_failures():
    # hand sum: response 0 -> 7+6+9 = 22, response 1 -> 3+6+2 = 11
    v = vote([[7, 3], None, [6, 6], [9, 2], None], 2)
    assert v.totals == [22, 11] and v.used == 3 and v.failed == 2
    assert vote([None, None], 3).totals == [0, 0, 0]
    with pytest.raises(ValueError):
        vote([[1, 2, 3]], 2)


def test_meta_rm_keeps_top_k_meta():
    samples = [[9, 1], [1, 9], [2, 8], [8, 3]]
    meta = [0.9, 0.1, 0.2, 0.8]
    assert meta_keep(meta, 2) == [0, 3]
    v = meta_vote(samples, meta, 2, 2)
    assert v.totals == [17, 4]  # 9+8, 1+3
    assert vote(samples, 2).totals == [20, 21]  # plain voting would pick response 1
    assert default_k_meta(8) == 4 and default_k_meta(1) == 1
    assert meta_keep([0.5, 0.5, 0.5], 2) == [0, 1]  # stable on ties
    with pytest.raises(ValueError):
        meta_vote(samples, meta[:3], 2, 2)
