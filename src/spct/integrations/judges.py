"""Where verdicts come from: a served spct (HTTP, V1 protocol) or a GRM loaded in this process.

Both take V1 instances (``{"messages", "responses", "k", ...}``) and return V1
predictions (``{"scores", "used", "failed", "best", "critiques", ...}``), so the
adapters for TRL, verl, OpenRLHF and MLflow do not care which one they hold.

:class:`ServerJudge` is async with bounded concurrency (up to 8 instances per
HTTP request, ``concurrency`` requests in flight), retries connection errors,
503 and 504 with exponential backoff (honouring ``Retry-After``), and sends the
bearer token. :class:`LocalJudge` runs :func:`spct.serving.scoring.score_batch`
(the predictor's own step) in a worker thread, one call for all instances.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import threading
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
MAX_INSTANCES = 8  # the server's per-request limit (Limits.max_instances)


class JudgeError(RuntimeError):
    """The judge refused a request or could not be reached after retries."""


class Judge(Protocol):
    async def judge(self, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine from sync code, also when the caller already runs an event loop (verl, notebooks)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class ServerJudge:
    """``spct serve`` at ``url`` (``http://host:port``); ``token`` defaults to ``$SPCT_API_TOKEN``."""

    def __init__(self, url: str, *, token: str | None = None, model: str = "spct-grm", concurrency: int = 8,
                 timeout_s: float = 600.0, retries: int = 4, backoff_s: float = 0.5):
        self.url = url.rstrip("/")
        self.model = model
        self.token = token if token is not None else os.environ.get("SPCT_API_TOKEN")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    async def _post(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        url = f"{self.url}/v1/models/{self.model}:predict"
        for attempt in range(self.retries + 1):
            wait = self.backoff_s * 2**attempt * (0.5 + random.random())
            try:
                r = await client.post(url, json=body, headers=self._headers())
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise JudgeError(f"spct at {self.url}: {type(e).__name__} after {self.retries + 1} tries") from e
            else:
                if r.status_code == 200:
                    return r.json()
                if r.status_code not in (503, 504) or attempt == self.retries:
                    try:
                        msg = r.json().get("error", r.text[:200])
                    except ValueError:
                        msg = r.text[:200]
                    raise JudgeError(f"spct at {self.url} answered {r.status_code}: {msg}")
                wait = max(wait, float(r.headers.get("retry-after", 0) or 0))
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def judge(self, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        import httpx

        chunks = [list(instances[i : i + MAX_INSTANCES]) for i in range(0, len(instances), MAX_INSTANCES)]
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:

            async def one(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
                async with gate:
                    return (await self._post(client, {"instances": chunk}))["predictions"]

            parts = await asyncio.gather(*(one(c) for c in chunks))
        return [p for part in parts for p in part]


class LocalJudge:
    """Voting in this process: an engine spec (``tiny``, a bundle or model directory), a loaded engine,
    or ``openai:URL`` (generation on a vLLM/SGLang/spct server, rendered with ``tokenizer``)."""

    def __init__(self, engine: Any, *, k: int = 4, temperature: float | None = None, max_new_tokens: int | None = None,
                 top_p: float | None = None, meta_rm: Any | None = None, k_meta: int | None = None,
                 token_budget: int | None = None, device: str = "auto", tokenizer: Any = None, api_key: str | None = None):
        from spct.engine import SamplingParams, open_engine
        from spct.serving.protocol import Defaults

        given = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "token_budget": token_budget}
        base = SamplingParams(**{k: v for k, v in given.items() if v is not None})  # unset: SamplingParams' defaults

        if isinstance(engine, str) and engine.startswith("openai:"):
            self.engine = open_engine(engine, tokenizer=tokenizer, api_key=api_key)
        elif isinstance(engine, str):
            self.engine = open_engine(engine, device=device)
        else:
            self.engine = engine
        self.meta_rm = meta_rm
        self.defaults = Defaults(k=k, k_meta=k_meta if meta_rm is not None else None, temperature=base.temperature)
        self.base = base
        self._lock = threading.Lock()  # one model, one sampling call at a time (any thread, any loop)

    def judge_sync(self, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        from spct.serving.protocol import Limits, parse_v1
        from spct.serving.scoring import score_batch

        limits = Limits(max_instances=max(1, len(instances)))
        requests = parse_v1({"instances": list(instances)}, limits, self.defaults)
        with self._lock:
            results = score_batch(self.engine, requests, self.base, meta_rm=self.meta_rm)
        return [r.to_v1() for r in results]

    async def judge(self, instances: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.judge_sync, instances)
