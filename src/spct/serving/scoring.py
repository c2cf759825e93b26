"""Judge a batch of requests with one sampling call: the predictor's model step.

Requests with different ``k`` share one :func:`spct.grm.judge.sample_judgments`
call: request ``r`` becomes ``k_r`` one-sample items keyed ``key_r#j``, so each
sample gets its own seeded response order. Only requests with different
temperatures (a different generation config) need separate calls.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from spct.grm.judge import JudgeItem, Sample, decide, sample_judgments
from spct.grm.parse import Judgment, ParseFailure
from spct.serving.protocol import JudgeRequest, JudgeResult, Timings

if TYPE_CHECKING:
    from spct.engine import Engine, SamplingParams


def request_key(req: JudgeRequest) -> str:
    """Stable per content and seed: the same request shuffles and breaks ties the same way."""
    h = hashlib.sha256()
    for m in req.messages:
        h.update(f"{m.role}\x00{len(m.content)}\x00".encode())
        h.update(m.content.encode("utf-8", "surrogatepass"))
    for r in req.responses:
        h.update(f"r\x00{len(r)}\x00".encode())
        h.update(r.encode("utf-8", "surrogatepass"))
    return f"{req.seed}:{h.hexdigest()[:16]}"


def _result(req: JudgeRequest, key: str, samples: list[Sample], meta: list[float] | None, k_meta: int | None) -> JudgeResult:
    n = len(req.responses)
    v = decide(key, samples, n, seed=req.seed, meta_scores=meta, k_meta=k_meta)
    failures = [
        {"sample": j, "reason": s.result.reason, "detail": s.result.detail}
        for j, s in enumerate(samples)
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
    """Results in request order; one ``sample_judgments`` call per distinct temperature."""
    results: list[JudgeResult | None] = [None] * len(requests)
    groups: dict[float, list[int]] = {}
    for i, r in enumerate(requests):
        groups.setdefault(r.temperature, []).append(i)
    for temperature, idxs in groups.items():
        t0 = time.perf_counter()
        keys = {i: request_key(requests[i]) for i in idxs}
        items, owner = [], []
        for i in idxs:
            r = requests[i]
            for j in range(r.k):
                items.append(JudgeItem(f"{keys[i]}#{j}", r.messages, r.responses))
                owner.append(i)
        params = replace(base, temperature=temperature, seed=requests[idxs[0]].seed)
        flat = [row[0] for row in sample_judgments(engine, items, 1, params)]
        per: dict[int, list[Sample]] = {i: [] for i in idxs}
        for i, s in zip(owner, flat):
            per[i].append(s)
        meta: dict[int, list[float]] = {}
        rated = [i for i in idxs if requests[i].k_meta is not None]
        if rated and meta_rm is not None:
            pairs = [s for i in rated for s in per[i]]
            scores = meta_rm.rate([s.prompt for s in pairs], [s.text for s in pairs])
            pos = 0
            for i in rated:
                meta[i] = list(scores[pos : pos + requests[i].k])
                pos += requests[i].k
        ms = (time.perf_counter() - t0) * 1000
        for i in idxs:
            r = requests[i]
            res = _result(r, keys[i], per[i], meta.get(i), r.k_meta if i in meta else None)
            res.timings = Timings(generate_ms=ms, batch_requests=len(idxs), batch_samples=len(items))
            results[i] = res
    return [r for r in results if r is not None]
