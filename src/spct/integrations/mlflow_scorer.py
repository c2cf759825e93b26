"""An MLflow GenAI scorer: ``mlflow.genai.evaluate(data, scorers=[spct_scorer(url=...)])``.

The scorer judges ``outputs`` as the answer to ``inputs`` with k sampled
critiques and returns a :class:`mlflow.entities.Feedback` whose value is the
mean GRM score (1..10) and whose rationale is the critique of the sample that
scored the answer highest (the principles it wrote, then its analysis);
``metadata`` keeps the vote (samples used, failed, per-sample scores). A judge
that could not score the answer returns a Feedback carrying an error instead
of a made-up value; an empty answer gets the lowest score (1) unjudged.

``inputs`` may be a question string, chat ``messages`` or a dict with one of
``question``, ``query``, ``prompt``, ``input``, ``request``, ``messages``;
``outputs`` a string, a dict with ``response``/``output``/``answer``/``content``,
or an OpenAI chat completion.
"""

from __future__ import annotations

from typing import Any

from spct.integrations.judges import Judge, JudgeError, LocalJudge, ServerJudge, run_sync
from spct.integrations.rewards import MAX_CHARS, completion_text, to_messages

_INPUT_KEYS = ("messages", "question", "query", "prompt", "input", "request", "inputs")
_OUTPUT_KEYS = ("response", "output", "answer", "content", "text", "outputs")


def _question(inputs: Any) -> list[dict[str, str]]:
    if isinstance(inputs, dict):
        for key in _INPUT_KEYS:
            if key in inputs:
                return _question(inputs[key])
        raise ValueError(f"inputs: no question found (expected one of {', '.join(_INPUT_KEYS)})")
    return to_messages(inputs)


def _answer(outputs: Any) -> str:
    if isinstance(outputs, dict):
        if isinstance(outputs.get("choices"), list) and outputs["choices"]:
            c = outputs["choices"][0]
            return completion_text(c.get("message", c.get("text", "")))
        for key in _OUTPUT_KEYS:
            if key in outputs:
                return _answer(outputs[key])
        raise ValueError(f"outputs: no answer found (expected one of {', '.join(_OUTPUT_KEYS)})")
    return completion_text(outputs)


def judge_feedback(judge: Judge, inputs: Any, outputs: Any, *, k: int | None = None, seed: int = 0, name: str = "spct") -> Any:
    """One answer judged: the Feedback the scorer returns."""
    from mlflow.entities import AssessmentError, AssessmentSource, AssessmentSourceType, Feedback

    source = AssessmentSource(source_type=AssessmentSourceType.LLM_JUDGE, source_id=name)
    answer = _answer(outputs)
    if not answer.strip():
        return Feedback(name=name, source=source, value=1.0, rationale="The answer is empty: not judged, given the lowest score.")
    inst: dict[str, Any] = {"messages": _question(inputs), "responses": [answer[:MAX_CHARS]], "seed": seed,
                            "return_critiques": True}
    if k is not None:
        inst["k"] = k
    try:
        (pred,) = run_sync(judge.judge([inst]))
    except (JudgeError, ValueError) as e:  # a refusal (too long, bad input) or an unreachable judge
        return Feedback(name=name, source=source, error=AssessmentError(error_code="SPCT_JUDGE_ERROR", error_message=str(e)))
    meta = {"k": pred["k"], "used": pred["used"], "failed": pred["failed"],
            "sample_scores": [s[0] if s else None for s in pred["sample_scores"]]}
    if not pred["used"]:
        return Feedback(name=name, source=source, metadata=meta,
                        error=AssessmentError(error_code="SPCT_UNSCORED",
                                              error_message=f"none of the {pred['k']} sampled critiques gave a parsable score"))
    kept = [j for j in pred["kept"] if pred["sample_scores"][j] is not None]
    top = max(kept, key=lambda j: pred["sample_scores"][j][0])
    principles = pred["principles"][top] or []
    rationale = "\n".join(f"- {p['text']}" for p in principles)
    rationale = (f"Principles:\n{rationale}\n\n" if rationale else "") + pred["critiques"][top]
    return Feedback(name=name, source=source, value=pred["scores"][0] / pred["used"], rationale=rationale, metadata=meta)


def spct_scorer(url: str | None = None, *, engine: Any = None, judge: Judge | None = None, token: str | None = None,
                k: int | None = None, seed: int = 0, name: str = "spct", **judge_kw: Any) -> Any:
    """A scorer for ``mlflow.genai.evaluate``: a served spct (``url``) or a local GRM (``engine``)."""
    from mlflow.genai.scorers import scorer

    if sum(x is not None for x in (url, engine, judge)) != 1:
        raise ValueError("give exactly one of url (a served spct), engine (a local GRM) or judge")
    the_judge: Judge = judge or (ServerJudge(url, token=token, **judge_kw) if url else LocalJudge(engine, **judge_kw))

    @scorer(name=name, description="SPCT generative reward model: mean score over k sampled critiques (1..10)")
    def spct(inputs: Any = None, outputs: Any = None) -> Any:
        return judge_feedback(the_judge, inputs, outputs, k=k, seed=seed, name=name)

    return spct
