"""Evaluation: greedy, Voting@k and MetaRM@k, each benchmark scored by its own rule."""

from spct.evaluate.harness import EvalSettings, evaluate, evaluate_dataset
from spct.evaluate.report import write_report
from spct.evaluate.scoring import Outcome, benchmark_of, score

__all__ = ["EvalSettings", "Outcome", "benchmark_of", "evaluate", "evaluate_dataset", "score", "write_report"]
