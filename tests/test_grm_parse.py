"""The parser reads only generated text, never crashes, and never invents scores."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from spct.grm import Judgment, ParseFailure, parse_judgment

GOOD = """Specific Criteria:
1. Correctness (60%): the arithmetic must be right.
2. Clarity (40%): the working is easy to follow.

Analysis:
Response 1 computes 17 * 3 = 51 correctly. Response 2 adds instead of multiplying.

Scores: \\boxed{9, 2}"""


def test_full_judgment():
    j = parse_judgment(GOOD, 2)
    assert isinstance(j, Judgment)
    assert j.scores == [9, 2]
    assert [p.weight for p in j.principles] == [60.0, 40.0]
    assert j.principles[0].text.startswith("Correctness")
    assert j.critique.startswith("Response 1 computes")
    assert "Scores" not in j.critique and "boxed" not in j.critique
    assert j.box == "\\boxed{9, 2}"


def test_last_box_wins():
    text = "Draft: \\boxed{1, 1}\nOn reflection...\nScores: \\boxed{3, 8}"
    assert parse_judgment(text, 2).scores == [3, 8]


def test_single_response_and_spacing():
    assert parse_judgment("Scores: \\boxed{ 7 }", 1).scores == [7]
    assert parse_judgment("\\boxed{10,1,+5}", 3).scores == [10, 1, 5]


def test_no_headings_means_whole_text_is_critique():
    j = parse_judgment("Both fine but the first is better. \\boxed{8, 6}", 2)
    assert j.principles == [] and j.critique == "Both fine but the first is better."


def test_failure_reasons():
    cases = {
        "no box at all": "no_box",
        "Scores: \\boxed{7}": "wrong_count",
        "\\boxed{7, 3, 2}": "wrong_count",
        "\\boxed{0, 5}": "out_of_range",
        "\\boxed{11, 5}": "out_of_range",
        "\\boxed{7.5, 3}": "non_integer",
        "\\boxed{seven, 3}": "non_integer",
        "\\boxed{7, }": "non_integer",
        "\\boxed{}": "wrong_count",
    }
    for text, reason in cases.items():
        r = parse_judgment(text, 2)
        assert isinstance(r, ParseFailure), text
        assert r.reason == reason, (text, r)
        assert r.detail


def test_nested_braces_are_not_a_score_list():
    assert parse_judgment("\\boxed{\\frac{1}{2}}", 1).reason == "no_box"


score_text = st.integers(min_value=-20, max_value=30).map(str)
boxed = st.lists(score_text, min_size=0, max_size=5).map(lambda xs: "\\boxed{" + ", ".join(xs) + "}")
noise = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(noise, boxed, st.just("Scores:"), st.just("Analysis:"), st.just("Specific Criteria:")), max_size=8),
       n=st.integers(min_value=1, max_value=4))
def test_never_crashes_and_never_invents(parts, n):
    text = "".join(parts)
    r = parse_judgment(text, n)
    if isinstance(r, Judgment):
        # The box the scores came from is really in the text, and it is the last one.
        assert r.box in text
        assert text.rfind(r.box) == max(m.start() for m in re.finditer(r"\\boxed\{[^{}]*\}", text))
        assert len(r.scores) == n and all(1 <= s <= 10 for s in r.scores)
        inside = r.box[len("\\boxed{"):-1].split(",")
        assert [int(x) for x in inside] == r.scores
    else:
        assert r.reason in {"no_box", "wrong_count", "out_of_range", "non_integer"}


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), n=st.integers(min_value=1, max_value=6))
def test_arbitrary_text(text, n):
    r = parse_judgment(text, n)
    assert isinstance(r, (Judgment, ParseFailure))
    if isinstance(r, Judgment):
        assert r.box in text
