"""The pointwise generative reward model: prompt, parse, rules and judging."""

from spct.grm.parse import Judgment, ParseFailure, Principle, parse_judgment
from spct.grm.prompt import build_chat, build_judge_prompt, neutralize, render, render_judge, special_strings
from spct.grm.rules import (
    MetaRM,
    Vote,
    default_k_meta,
    is_right,
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

__all__ = [
    "Judgment", "ParseFailure", "Principle", "parse_judgment",
    "build_chat", "build_judge_prompt", "neutralize", "render", "render_judge", "special_strings",
    "MetaRM", "Vote", "default_k_meta", "is_right", "is_right_for_labels", "is_strictly_right",
    "meta_keep", "meta_vote", "permutation", "pick_best", "sample_rng", "tied_best",
    "to_original", "vote",
]
