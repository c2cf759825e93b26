"""Judge a batch of requests: the predictor's model step, through :func:`spct.grm.judge.judge`.

Every request becomes one :class:`JudgeItem` with its own ``k``, ``k_meta`` and
``seed``, so its samples are shuffled, voted and tie-broken exactly as ``spct
eval`` and ``spct judge`` do for the same content and seed. Requests share one
sampling call unless they differ in temperature (a different generation config):
clients that each send their own seed still batch. The call is seeded with its
first request's seed, so a request judged alone (or greedily) gets exactly the
samples ``spct judge`` gets; a sampled request's text otherwise depends on the
requests it shares the batch with.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spct.grm.judge import Judged, JudgeItem, content_key, judge
from spct.grm.parse import Judgment, ParseFailure
from spct.serving.protocol import JudgeRequest, JudgeResult, Timings

if TYPE_CHECKING:
    from spct.engine import Engine, SamplingParams


def request_key(req: JudgeRequest) -> str:
    """Stable per content: the same request shuffles and breaks ties the same way (with its seed)."""
    return content_key(req.messages, req.responses)


def _result(req: JudgeRequest, j: Judged) -> JudgeResult:
    v, samples = j.verdict, j.samples
    failures = [
        {"sample": i, "reason": s.result.reason, "detail": s.result.detail}
        for i, s in enumerate(samples)
        if isinstance(s.result, ParseFailure)
    ]
    res = JudgeResult(
        scores=v.totals, best=v.best, tied=v.tied, sample_scores=[s.scores for s in samples],
        used=v.used, failed=v.failed, kept=v.kept, parse_failures=failures,
        generated_tokens=sum(s.completion_tokens for s in samples), prompt_tokens=sum(s.prompt_tokens for s in samples),
        meta_scores=v.meta_scores,
    )
    if req.return_critiques:
        res.critiques = [s.result.critique if isinstance(s.result, Judgment) else s.text for s in samples]
        res.principles = [
            [{"text": p.text, "weight": p.weight} for p in s.result.principles] if isinstance(s.result, Judgment) else []
            for s in samples
        ]
    return res


def score_batch(
    engine: "Engine",
    requests: Sequence[JudgeRequest],
    base: "SamplingParams",
    *,
    meta_rm: Any | None = None,
) -> list[JudgeResult]:
    """Results in request order; one ``judge`` call per distinct temperature."""
    results: list[JudgeResult | None] = [None] * len(requests)
    groups: dict[float, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.temperature, []).append(i)
    for temperature, idxs in groups.items():
        t0 = time.perf_counter()
        items = [
            JudgeItem(requests[i].messages, requests[i].responses, k=requests[i].k, seed=requests[i].seed,
                      k_meta=requests[i].k_meta if meta_rm is not None else None)
            for i in idxs
        ]  # fmt: skip
        params = replace(base, temperature=temperature, seed=requests[idxs[0]].seed)
        judged = judge(engine, items, params, meta_rm=meta_rm)
        ms = (time.perf_counter() - t0) * 1000
        for i, j in zip(idxs, judged):
            res = _result(requests[i], j)
            res.timings = Timings(generate_ms=ms, batch_requests=len(idxs), batch_samples=sum(it.k for it in items))
            results[i] = res
    return [r for r in results if r is not None]
