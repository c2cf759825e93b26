"""Surface baselines: judges that never read the question.

A GRM's accuracy means little if a judge that looks only at the responses scores as
well: NLI's hypothesis-only baseline, here a response-only classifier. Three such
judges score every evaluation beside the position baselines:

* ``response_only``: scikit-learn logistic regression on character and word n-grams of
  each response *on its own*, fitted on training items' responses labelled right/wrong.
  It never sees the conversation, so whatever it gets right is guessable from the
  answers' surface (case, length, digits, formatting, vocabulary).
* ``longest`` / ``shortest``: the response's length in characters.

When no training items are given (a benchmark evaluated on its own) the classifier is
*cross-fitted* on the evaluation items: each content group is scored by a model fitted
on the other folds, so no item is scored by a model that saw its labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spct.evaluate.scoring import best_set
from spct.types import Example

SURFACE_BASELINES = ("response_only", "longest", "shortest")
FOLDS = 5  # cross-fitting folds when there is no training set


def length_scores(ex: Example, longest: bool = True) -> list[float]:
    """Each response's length in characters (negated for ``shortest``): equal lengths tie."""
    sign = 1.0 if longest else -1.0
    return [sign * len(r) for r in ex.responses]


@dataclass
class ResponseOnly:
    """A fitted response-only classifier: :meth:`scores` rates each response alone."""

    model: Any  # sklearn Pipeline: n-gram features -> logistic regression
    n_train: int  # responses it was fitted on
    fitted_on: str  # "training items" or "cross-fitted on the evaluation items"

    def scores(self, ex: Example) -> list[float]:
        """P(right) of each response in the original order, rounded so identical text ties exactly."""
        return self.score_all([ex])[0]

    def score_all(self, examples: Sequence[Example]) -> list[list[float]]:
        """:meth:`scores` of every example, in one ``predict_proba`` call (one call per item was
        most of the baseline's time on a large benchmark)."""
        texts = [r for ex in examples for r in ex.responses]
        probs = [round(float(p), 9) for p in self.model.predict_proba(texts)[:, 1]] if texts else []
        out, at = [], 0
        for ex in examples:
            out.append(probs[at : at + ex.n])
            at += ex.n
        return out


@dataclass(frozen=True)
class Fit:
    """How an evaluation gets its response-only classifier: ``model`` fitted on the training items,
    ``error`` when training items were given but no classifier could be fitted (one class), neither
    when there are no training items (the classifier is then cross-fitted on the evaluation items)."""

    model: ResponseOnly | None = None
    error: str | None = None


def fit_training(train: Sequence[Example] | None, seed: int = 0) -> Fit:
    """Fit on ``train`` once for a whole evaluation (every dataset of it shares the model)."""
    if not train:
        return Fit()
    try:
        return Fit(fit_response_only(train, seed))
    except ValueError as e:
        return Fit(error=str(e))


def _training_pairs(examples: Sequence[Example]) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for ex in examples:
        if ex.n < 2 and ex.labels is None:
            continue  # a lone response with no label says nothing about right vs wrong
        good = best_set(ex)
        for i, r in enumerate(ex.responses):
            texts.append(r)
            labels.append(1 if i in good else 0)
    return texts, labels


def fit_response_only(examples: Sequence[Example], seed: int = 0, fitted_on: str = "training items") -> ResponseOnly:
    """Fit the classifier on ``examples``' responses (right = 1, wrong = 0); the questions are never read.

    Character n-grams (1-5, within word boundaries) catch case, digits and spelling; word uni- and
    bigrams catch vocabulary and phrasing; class weights balance the one right answer against
    several wrong ones. Raises ``ValueError`` when the responses hold only one class.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts, labels = _training_pairs(examples)
    if len(set(labels)) < 2:
        raise ValueError(f"the response-only baseline needs right and wrong responses to fit; got {len(texts)} responses of one class")
    features = make_union(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), lowercase=False, sublinear_tf=True, min_df=1),
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=False, token_pattern=r"(?u)\b\w+\b|[^\w\s]"),
    )
    clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed)
    model = make_pipeline(features, clf).fit(texts, labels)
    return ResponseOnly(model, len(texts), fitted_on)


def _fold(group: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest(), 16) % FOLDS


def surface_scores(
    examples: Sequence[Example], groups: Mapping[str, str], fit: Fit, *, seed: int = 0
) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Per example id, each surface judge's response scores; and how the classifier was fitted.

    ``groups`` maps example id to its content group: cross-fitting keeps a group in one fold, so
    a duplicated item is never scored by a model fitted on its copy.
    """
    out = {ex.id: {"longest": length_scores(ex, True), "shortest": length_scores(ex, False)} for ex in examples}
    if fit.model is not None:
        for ex, sc in zip(examples, fit.model.score_all(examples)):
            out[ex.id]["response_only"] = sc
        return out, {"fitted_on": fit.model.fitted_on, "train_responses": fit.model.n_train}
    if fit.error is not None:
        # One class only (every response right, or a rating set): no classifier can be fitted, and the
        # report says so instead of inventing a figure.
        return out, {"fitted_on": None, "error": fit.error}
    folds = [[ex for ex in examples if _fold(groups[ex.id], seed) == f] for f in range(FOLDS)]
    n_train, scored = 0, {}
    try:
        for f, held in enumerate(folds):
            if held:
                model = fit_response_only([ex for g, fold in enumerate(folds) if g != f for ex in fold], seed)
                n_train += model.n_train
                scored.update((ex.id, sc) for ex, sc in zip(held, model.score_all(held)))
    except ValueError as e:
        return out, {"fitted_on": None, "error": str(e)}
    for i, sc in scored.items():
        out[i]["response_only"] = sc
    return out, {"fitted_on": f"cross-fitted on the evaluation items ({FOLDS} folds by content group)",
                 "train_responses": n_train // FOLDS}
