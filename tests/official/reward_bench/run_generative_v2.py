# Copyright 2023 AllenAI. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

# spct: excerpts of allenai/reward-bench at commit 05a9005efb607249822c193590c8ecab87c77052:
#   ratings_multi_winners   rewardbench/generative_v2.py run_judge_ratings_multi, lines 500-511
#                           (the API path's "find top score"; file last changed in fd72033)
#   api_ratings_result      scripts/run_generative_v2.py main() > get_judgement, lines 324-331
#   vllm_ratings_result     scripts/run_generative_v2.py main() > get_vllm_judgement, lines 552-564
#                           (file last changed in fd72033)
# Bodies verbatim; only the enclosing ``def`` lines, parameters and ``return`` lines marked ``# spct:`` are added.


def ratings_multi_winners(ratings, judgments=None, prompts=None):  # spct: API path, after rating each answer
    # find top score
    valid_scores = [r for r in ratings if r != -1]
    if not valid_scores:
        # all failed
        info = {"ratings": ratings, "judgments": judgments, "error": "All ratings invalid."}
        return "error", prompts, info

    max_rating = max(valid_scores)
    winners = [i for i, r in enumerate(ratings) if r == max_rating]

    info = {"ratings": ratings, "judgments": judgments}
    return winners, prompts, info


def api_ratings_result(winners):  # spct: get_judgement's non-Ties ratings branch, from run_judge_ratings_multi's winners
    # for non ties data, return
    if winners == "error":
        # effectively a tie
        return 0.25

    # handle ties, first response (index 0) is the correct one
    # 1 if the first response is the winner, 0.5 if joint (2-way) winner, 0.33 if 3-way, etc.
    return (0 in winners) / len(winners)


class _Args:  # spct: stands in for argparse's args; only ``debug`` is read
    debug = False


def vllm_ratings_result(ratings, args=_Args, logger=None):  # spct: get_vllm_judgement's non-Ties ratings branch
    # Find winners (non-ties case)
    valid_ratings = [r for r in ratings if r != -1]
    if not valid_ratings:
        return 0.25

    max_rating = max(valid_ratings)
    winners = [i for i, r in enumerate(ratings) if r == max_rating]

    if args.debug:
        logger.info(f"Raw judgment: {valid_ratings}")

    # Return score based on whether first answer (chosen) is among winners
    return (0 in winners) / len(winners)
