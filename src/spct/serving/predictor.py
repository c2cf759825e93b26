"""The KServe predictor: a ``kserve.Model`` that judges responses with the GRM.

The constructor is cheap; :meth:`GRMModel.load` resolves the model source,
loads it, starts the batcher and runs one warm-up judgment before setting
``ready`` (KServe refuses to start with a model that is not ready, so the
server only listens once the model can answer).
"""

from __future__ import annotations

import asyncio
import secrets
import copy
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import kserve
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from spct.grm.prompt import render_judge, special_strings
from spct.serving import metrics
from spct.serving.batcher import BatchPolicy, Batcher, Job, QueueFull
from spct.serving.bundle import Bundle, load_meta_rm, resolve
from spct.serving.openai_api import GenRequest
from spct.serving.scoring import score_batch
from spct.serving.protocol import (
    Defaults,
    JudgeRequest,
    JudgeResult,
    Limits,
    RequestError,
    loads,
    parse_v1,
    parse_v2,
    v2_body_from_infer_request,
)
from spct.types import Message

log = logging.getLogger("spct.serving")
WARMUP = JudgeRequest((Message(role="user", content="What is 2 + 2?"),), ("4", "5"), k=1, temperature=0.0)


def _break_specials(text: str, specials: list[str]) -> str:
    # The tokenizer would turn "<|im_end|>" typed in a message into a real turn boundary.
    for sp in specials:
        if sp in text:
            text = text.replace(sp, sp[0] + " " + sp[1:])
    return text


class ServingError(RuntimeError):
    """A request that cannot be answered now (busy, timed out): ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ServerSettings:
    """How ``spct serve`` runs: ports, device, batching, limits."""

    name: str = "spct-grm"
    host: str = "127.0.0.1"  # loopback unless asked: a pod passes --host 0.0.0.0
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = False
    device: str = "auto"
    dtype: str = "float32"
    token_budget: int = 8192  # padded tokens per generate() micro-batch (the engine's)
    batching: bool = True
    max_wait_ms: float = 10.0
    max_batch_tokens: int = 32_768
    max_batch_requests: int = 64
    max_queue: int = 256
    request_timeout_s: float = 120.0
    grace_period_s: int = 30
    tracking_uri: str | None = None
    cache_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # empty: no authentication
    # "openai:URL": generation runs on that server (vLLM, ...); this process renders, parses,
    # votes and runs the meta RM, with the bundle's tokenizer and settings.
    engine: str | None = None

    def policy(self) -> BatchPolicy:
        return BatchPolicy(
            max_batch_tokens=self.max_batch_tokens,
            max_batch_requests=self.max_batch_requests if self.batching else 1,
            max_wait_s=self.max_wait_ms / 1000 if self.batching else 0.0,
            max_queue=self.max_queue,
        )


@dataclass
class Parsed:
    protocol: str  # "v1" | "v2"
    requests: list[JudgeRequest]
    tokens: int
    started: float
    request_id: str | None = None
    outputs: list[str] | None = None


class GRMModel(kserve.Model):
    """Judge requests in, verdicts out; ``meta_rm`` overrides the bundle's meta RM."""

    def __init__(self, source: str, settings: ServerSettings | None = None, *, meta_rm: Any | None = None):
        self.settings = settings or ServerSettings()
        super().__init__(self.settings.name)
        self.source = source
        self._meta_rm = meta_rm
        self.bundle: Bundle | None = None
        self._engine: Any = None  # not `engine`: KServe reads that name for its own engine protocol
        self.batcher: Batcher | None = None
        self.defaults = Defaults()
        self.warmup_ms = 0.0
        self._tok: Any = None
        self._specials: list[str] = []

    # -- lifecycle ---------------------------------------------------------
    def load(self) -> bool:
        from spct.engine import Engine, SamplingParams

        s = self.settings
        bundle = resolve(self.source, cache_dir=s.cache_dir, tracking_uri=s.tracking_uri)
        if s.engine:
            from spct.engine.openai import open_engine

            engine = open_engine(s.engine, tokenizer=bundle.spec)
            engine.wait_ready(900.0, log)  # a vLLM pod may still be loading its weights: KServe waits on our readiness
        else:
            engine = Engine.load(bundle.spec, dtype=s.dtype, device=s.device)
        meta = self._meta_rm
        if meta is None and bundle.meta_rm_dir is not None:
            from spct.engine.models import resolve_device

            meta = load_meta_rm(bundle.meta_rm_dir, device=resolve_device(s.device))
        cfg = bundle.config
        self.defaults = Defaults(k=cfg.k, k_meta=cfg.k_meta if meta is not None else None,
                                 temperature=cfg.temperature, seed=0)
        base = SamplingParams(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                              min_new_tokens=min(cfg.min_new_tokens, cfg.max_new_tokens), seed=0, token_budget=s.token_budget)
        self._meta_rm, self.bundle = meta, bundle
        # A private tokenizer copy for request-size checks on the event loop, so
        # they never share the Rust tokenizer with the sampling thread.
        self._tok = copy.deepcopy(engine.tokenizer)
        self._specials = special_strings(self._tok)
        self._base = base
        self.batcher = Batcher(lambda items: self._run(engine, items), s.policy(), self._observe)
        self.batcher.start()
        t0 = time.perf_counter()
        self.batcher.submit([WARMUP], 1).result()
        self.warmup_ms = (time.perf_counter() - t0) * 1000
        self._engine = engine
        log.info("model %s (%s, version %s) warmed up in %.0f ms", self.name, bundle.spec, bundle.version, self.warmup_ms)
        self.ready = True
        return self.ready

    def stop(self) -> None:
        """Called by KServe on shutdown, after the HTTP server drained in-flight requests."""
        self.ready = False
        if self.batcher is not None:
            self.batcher.stop(timeout=self.settings.grace_period_s)

    @property
    def has_meta_rm(self) -> bool:
        return self._meta_rm is not None

    @property
    def version(self) -> str:
        return self.bundle.version if self.bundle else "unloaded"

    # -- request path --------------------------------------------------------
    def parse(self, payload: Any) -> Parsed:
        """Validate a V1 dict/bytes or a V2 ``InferRequest`` and check the model-level limits."""
        t0 = time.perf_counter()
        lim = self.settings.limits
        outputs = None
        request_id = None
        if isinstance(payload, InferRequest):
            proto = "v2"
            body = v2_body_from_infer_request(payload)
            reqs = [parse_v2(body, lim, self.defaults)]
            request_id = payload.id
            if payload.request_outputs:
                outputs = [o.name for o in payload.request_outputs]
        else:
            proto = "v1"
            if isinstance(payload, (bytes, bytearray)):
                payload = loads(bytes(payload), lim)
            reqs = parse_v1(payload, lim, self.defaults)
        tokens = sum(self.check_judge(r, f"{r.field}.k_meta" if proto == "v1" else "k_meta") for r in reqs)
        return Parsed(proto, reqs, tokens, t0, request_id, outputs)

    def prompt_tokens(self, req: JudgeRequest) -> int:
        text = render_judge(self._tok, req.messages, req.responses, specials=self._specials)
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Parsed:
        return self.parse(payload)

    async def submit(self, items: list[Any], tokens: int, *, solo: bool = False) -> list[Any]:
        """Queue items (judge or generation requests) for the model; their results, in order."""
        if not self.ready or self.batcher is None:
            raise ServingError(503, "the model is not ready")
        try:
            fut = self.batcher.submit(items, tokens, solo=solo)
        except QueueFull as e:
            raise ServingError(503, f"server busy: {e}; retry later") from None
        metrics.QUEUE_DEPTH.set(self.batcher.waiting)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            fut.cancel()
            raise ServingError(504, f"the request did not finish within {self.settings.request_timeout_s:g} s") from None

    async def predict(self, payload: Parsed, headers: dict[str, str] | None = None) -> Any:
        results: list[JudgeResult] = await self.submit(payload.requests, payload.tokens)
        self.record(results)
        total_ms = (time.perf_counter() - payload.started) * 1000
        for r in results:
            r.timings.total_ms = total_ms
            r.timings.queue_ms = max(0.0, total_ms - r.timings.generate_ms)
        return self.encode_v2(payload, results[0]) if payload.protocol == "v2" else self.encode_v1(results)

    # -- raw generation (the OpenAI routes) -------------------------------------
    def check_judge(self, req: JudgeRequest, k_meta_field: str) -> int:
        """The token estimate of a judge request; refuses what the model cannot take."""
        lim = self.settings.limits
        if req.k_meta is not None and self._meta_rm is None:
            raise RequestError(k_meta_field, "this model has no meta RM; leave k_meta out")
        n = self.prompt_tokens(req)
        if n > lim.max_prompt_tokens:
            raise RequestError(req.field, f"the judge prompt is {n} tokens, over the limit of {lim.max_prompt_tokens}", 413)
        return req.k * (n + (self.bundle.config.max_new_tokens if self.bundle else 0))

    def render_chat(self, messages: Any) -> str:
        """A chat through the model's template; control-token text in the content is broken up."""
        from spct.grm.prompt import render

        chat = [{"role": m.role, "content": _break_specials(m.content, self._specials)} for m in messages]
        return render(self._tok, chat)

    def check_gen(self, gen: GenRequest) -> int:
        lim = self.settings.limits
        total = 0
        for i, prompt in enumerate(gen.prompts):
            n = len(self._tok(prompt, add_special_tokens=False)["input_ids"])
            if n > lim.max_prompt_tokens:
                where = gen.field if len(gen.prompts) == 1 else f"{gen.field}[{i}]"
                raise RequestError(where, f"{n} tokens, over the limit of {lim.max_prompt_tokens}", 413)
            total += gen.n * (n + gen.max_tokens)
        return total

    def _run(self, engine: Any, items: list[Any]) -> list[Any]:
        """The batch step on the worker thread: judge requests voted, generation requests sampled."""
        out: list[Any] = [None] * len(items)
        judged = [i for i, x in enumerate(items) if isinstance(x, JudgeRequest)]
        if judged:
            for i, r in zip(judged, score_batch(engine, [items[i] for i in judged], self._base, meta_rm=self._meta_rm)):
                out[i] = r
        groups: dict[tuple, list[int]] = {}
        for i, x in enumerate(items):
            if isinstance(x, GenRequest):
                groups.setdefault((x.temperature, x.top_p, x.max_tokens, x.min_tokens, x.seed), []).append(i)
        for (temperature, top_p, max_tokens, min_tokens, seed), idxs in groups.items():
            if seed is None:  # OpenAI semantics: no seed, fresh randomness every time
                seed = secrets.randbelow(2**62)
            # Expanded exactly as engine.generate(prompts, params, n) expands them, so a
            # seeded request alone in its batch samples what the local engine would.
            flat = [p for i in idxs for p in items[i].prompts for _ in range(items[i].n)]
            params = replace(self._base, temperature=temperature, top_p=top_p, max_new_tokens=max_tokens,
                             min_new_tokens=min_tokens, seed=seed)
            gens = [row[0] for row in engine.generate(flat, params, n=1)]
            pos = 0
            for i in idxs:
                g = items[i]
                out[i] = [gens[pos + j * g.n : pos + (j + 1) * g.n] for j in range(len(g.prompts))]
                pos += len(g.prompts) * g.n
        return out

    # -- answers ---------------------------------------------------------------
    def encode_v1(self, results: list[JudgeResult]) -> dict[str, Any]:
        t = results[0].timings
        return {
            "predictions": [r.to_v1() for r in results],
            "model_name": self.name,
            "model_version": self.version,
            "timings": {"queue_ms": round(t.queue_ms, 3), "generate_ms": round(t.generate_ms, 3),
                        "total_ms": round(t.total_ms, 3), "batch_requests": t.batch_requests,
                        "batch_samples": t.batch_samples},
        }

    def encode_v2(self, p: Parsed, r: JudgeResult) -> InferResponse:
        k, n = len(r.sample_scores), len(r.scores)
        outs = [
            InferOutput("scores", [n], "INT64", r.scores),
            InferOutput("best", [1], "INT64", [r.best]),
            InferOutput("tied", [len(r.tied)], "INT64", r.tied),
            # 0 marks a sample that did not parse (real scores are 1..10); see "parsed".
            InferOutput("sample_scores", [k, n], "INT64", [x for s in r.sample_scores for x in (s or [0] * n)]),
            InferOutput("parsed", [k], "BOOL", [s is not None for s in r.sample_scores]),
        ]
        if r.meta_scores is not None:
            outs.append(InferOutput("meta_scores", [k], "FP64", r.meta_scores))
        if r.critiques is not None:
            outs.append(InferOutput("critiques", [k], "BYTES", r.critiques))
            outs.append(InferOutput("principles", [k], "BYTES", [json.dumps(x) for x in r.principles or []]))
        if r.parse_failures:
            outs.append(InferOutput("parse_failures", [len(r.parse_failures)], "BYTES", [json.dumps(f) for f in r.parse_failures]))
        if p.outputs:
            outs = [o for o in outs if o.name in p.outputs]
        t = r.timings
        params = {
            "used": r.used, "failed": r.failed, "generated_tokens": r.generated_tokens, "prompt_tokens": r.prompt_tokens,
            "queue_ms": round(t.queue_ms, 3), "generate_ms": round(t.generate_ms, 3), "total_ms": round(t.total_ms, 3),
            "batch_requests": t.batch_requests,
        }
        return InferResponse(p.request_id or str(uuid.uuid4()), self.name, outs, model_version=self.version, parameters=params)

    def _observe(self, batch: list[Job]) -> None:
        metrics.BATCH_REQUESTS.observe(len(batch))
        metrics.BATCH_SAMPLES.observe(sum(r.k if isinstance(r, JudgeRequest) else len(r.prompts) * r.n
                                          for j in batch for r in j.items))
        metrics.QUEUE_DEPTH.set(self.batcher.waiting if self.batcher else 0)

    def record(self, results: list[JudgeResult]) -> None:
        for r in results:
            metrics.GENERATED_TOKENS.inc(r.generated_tokens)
            for f in r.parse_failures:
                metrics.PARSE_FAILURES.labels(f["reason"]).inc()
