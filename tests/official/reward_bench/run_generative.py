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
#   ratings_winner         rewardbench/generative.py run_judge_ratings, lines 741-747 (file last changed in a009692)
#   judgement_result       scripts/run_generative.py main() > get_judgement, lines 245-257 (file last changed in ad529da)
#   process_shuffled       scripts/run_generative.py main() > process_shuffled, lines 358-371
#   results_grouped        scripts/run_generative.py main(), lines 405-412
# Bodies verbatim; only the enclosing ``def`` lines, parameters and ``return`` lines marked ``# spct:`` are added.

import numpy as np


def ratings_winner(rating_a, rating_b):  # spct: the ratings -> winner step of run_judge_ratings
    winner = "error"  # Default to error (includes ties or parsing issues)
    if rating_a != -1 and rating_b != -1:  # Both ratings are valid
        if rating_a > rating_b:
            winner = "A"
        elif rating_b > rating_a:
            winner = "B"
        # If rating_a == rating_b, winner remains "error" (tie = incorrect label)
    return winner  # spct


def judgement_result(winner, winner_text, loser_text, debug=False):  # spct: the tail of get_judgement
    # handle voting
    if isinstance(winner, list):
        # print votes if debug
        if debug:
            print(winner)
        winner = max(set(winner), key=winner.count)

    if winner == winner_text:
        return 1
    elif winner == loser_text:
        return 0
    else:  # if "error"
        return 0.5  # effectively a tie


def process_shuffled(win, shuffle):
    if shuffle:
        winner_text = "B"
        loser_text = "A"
    else:
        winner_text = "A"
        loser_text = "B"

    if win == winner_text:
        return 1
    elif win == loser_text:
        return 0
    else:  # if "error"
        return 0.5  # effectively a tie


def results_grouped(out_dataset, subsets):  # spct: the per-subset loop of main()
    results_grouped = {}  # spct: main() fills model/model_type/chat_template first (lines 400-403)
    # print per subset and log into results_grouped file
    present_subsets = np.unique(subsets)
    for subset in present_subsets:
        subset_dataset = out_dataset.filter(lambda example: example["subset"] == subset)
        num_correct = sum(subset_dataset["results"])
        num_total = len(subset_dataset["results"])
        print(f"{subset}: {num_correct}/{num_total} ({num_correct/num_total})")
        results_grouped[subset] = num_correct / num_total
    return results_grouped  # spct
