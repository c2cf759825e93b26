"""An engine whose generations come from an OpenAI-compatible server (vLLM, SGLang,
KServe's Hugging Face runtime, another ``spct serve``): ``open_engine("openai:http://host:8000")``.

It has the local :class:`spct.engine.Engine`'s shape (``tokenizer``, ``render``,
``generate``), so judging, evaluation, RFT and meta-RM sampling run on it
unchanged. Prompts are rendered here with the GRM's tokenizer (the same text the
local engine would feed the model) and sent to ``/v1/completions`` as prompt
arrays, ``chunk`` prompts per request, ``concurrency`` requests in flight;
connection errors, 429 and 5xx are retried with exponential backoff (honouring
``Retry-After``); each request has a timeout; the tokens the server reports are
summed in :attr:`OpenAIEngine.usage`.

Seeds: a call's chunk ``c`` is sent with ``seed = params.seed + c * 1_000_003``.
Servers that seed each prompt on its own (vLLM, SGLang) would give identical
prompts of one request identical samples, so by default identical prompts of a
chunk are merged into one prompt with a larger ``n``. spct's server seeds a
request as a whole (one batched ``generate``, exactly as the local engine does
for the same prompts), so against spct nothing is merged and the same seed gives
the same text as the local engine; the engine recognises spct by its model
list (KServe's ``{"models": [...]}``).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spct.engine.sampler import Generation, SamplingParams

SEED_STRIDE = 1_000_003
RETRY_STATUS = {429, 500, 502, 503, 504}


class EngineError(RuntimeError):
    """The server refused a request, or could not be reached after the retries."""


@dataclass
class Usage:
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class OpenAIEngine:
    """Generation over HTTP. ``tokenizer``: a loaded tokenizer or a model spec/directory to load one from.

    The bearer key: ``api_key``, else ``$SPCT_ENGINE_API_KEY``, ``$OPENAI_API_KEY``, ``$SPCT_API_TOKEN``.
    """

    def __init__(self, url: str, *, tokenizer: Any = None, model: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, chunk: int = 64, max_request_bytes: int = 900_000, timeout_s: float = 600.0,
                 retries: int = 5, backoff_s: float = 0.5, merge_duplicates: bool | None = None):
        if tokenizer is None:
            raise ValueError("an OpenAI engine renders prompts locally: give tokenizer= (the GRM's model spec or directory)")
        if isinstance(tokenizer, (str, os.PathLike)):
            tokenizer = load_tokenizer(str(tokenizer))
        self.url = _base_url(url)
        self.tokenizer = tokenizer
        self.name = f"openai:{self.url}"
        self.model = model
        env = os.environ
        self.api_key = api_key if api_key is not None else (
            env.get("SPCT_ENGINE_API_KEY") or env.get("OPENAI_API_KEY") or env.get("SPCT_API_TOKEN"))
        self.concurrency = concurrency
        self.chunk = chunk
        self.max_request_bytes = max_request_bytes
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.merge_duplicates = merge_duplicates
        self.usage = Usage()
        self._lock = threading.Lock()

    # -- the Engine interface ------------------------------------------------------------------
    def render(self, chat: list[dict[str, str]]) -> str:
        from spct.grm.prompt import render

        return render(self.tokenizer, chat)

    def generate(self, prompts: Sequence[str], params: SamplingParams, n: int = 1, progress: bool = False) -> list[list[Generation]]:
        """``n`` completions per prompt, in prompt order (``progress`` is accepted and ignored)."""
        from spct.integrations.judges import run_sync

        return run_sync(self.agenerate(prompts, params, n))

    def wait_ready(self, timeout_s: float = 900.0, log: Any = None) -> None:
        """Poll the model list until the server answers (a vLLM pod loads its weights for minutes)."""
        import time

        import httpx

        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            try:
                r = httpx.get(f"{self.url}/v1/models", headers=self._headers(), timeout=10)
                if r.status_code == 200:
                    return
                if r.status_code in (401, 403):
                    raise EngineError(f"{self.url}/v1/models answered {r.status_code}: {_message(r)} (check the engine's API key)")
                last = f"HTTP {r.status_code}"
            except httpx.TransportError as e:
                last = type(e).__name__
            if time.monotonic() > deadline:
                raise EngineError(f"{self.url} did not answer within {timeout_s:g} s (last: {last})")
            if log is not None:
                log.info("waiting for the engine at %s (%s)", self.url, last)
            time.sleep(5)

    # -- async core --------------------------------------------------------------------------
    async def agenerate(self, prompts: Sequence[str], params: SamplingParams, n: int = 1) -> list[list[Generation]]:
        import httpx

        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not prompts:
            return []
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=self._headers()) as client:
            await self._discover(client)
            chunks = self._chunks(list(prompts))
            gate = asyncio.Semaphore(self.concurrency)

            async def run(c: int, idx: list[int]) -> list[list[Generation]]:
                async with gate:
                    return await self._chunk(client, [prompts[i] for i in idx], params, n, params.seed + c * SEED_STRIDE)

            parts = await asyncio.gather(*(run(c, idx) for c, idx in enumerate(chunks)))
        out: list[list[Generation]] = [[] for _ in prompts]
        for idx, rows in zip(chunks, parts):
            for i, row in zip(idx, rows):
                out[i] = row
        return out

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _chunks(self, prompts: list[str]) -> list[list[int]]:
        chunks: list[list[int]] = []
        cur: list[int] = []
        size = 0
        for i, p in enumerate(prompts):
            b = len(p.encode("utf-8", "surrogatepass")) + 16
            if cur and (len(cur) >= self.chunk or size + b > self.max_request_bytes):
                chunks.append(cur)
                cur, size = [], 0
            cur.append(i)
            size += b
        if cur:
            chunks.append(cur)
        return chunks

    async def _discover(self, client: Any) -> None:
        """The model name (when not given) and whether the server is spct (seeds whole requests)."""
        if self.model is not None and self.merge_duplicates is not None:
            return
        r = await self._request(client, "GET", "/v1/models", None)
        body = r.json()
        if isinstance(body.get("models"), list):  # KServe's V1 model list: a spct predictor
            names = list(body["models"])
            spct = True
        else:
            names = [m.get("id") for m in body.get("data", []) if isinstance(m, dict)]
            spct = False
        if self.model is None:
            if not names:
                raise EngineError(f"{self.url} lists no model; pass model=")
            self.model = names[0]
        if self.merge_duplicates is None:
            self.merge_duplicates = not spct

    async def _request(self, client: Any, method: str, path: str, body: dict[str, Any] | None) -> Any:
        import httpx

        for attempt in range(self.retries + 1):
            wait = self.backoff_s * 2**attempt * (0.5 + random.random())
            try:
                r = await client.request(method, self.url + path, json=body)
            except httpx.TransportError as e:
                if attempt == self.retries:
                    raise EngineError(f"{self.url}{path}: {type(e).__name__} after {attempt + 1} tries") from e
            else:
                if r.status_code < 400:
                    return r
                if r.status_code not in RETRY_STATUS or attempt == self.retries:
                    raise EngineError(f"{self.url}{path} answered {r.status_code}: {_message(r)}")
                try:
                    wait = max(wait, float(r.headers.get("retry-after") or 0))
                except ValueError:
                    pass
            with self._lock:
                self.usage.retries += 1
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _chunk(self, client: Any, prompts: list[str], params: SamplingParams, n: int, seed: int) -> list[list[Generation]]:
        if self.merge_duplicates:
            distinct = list(dict.fromkeys(prompts))
            counts = {p: prompts.count(p) * n for p in distinct}
            # one request per multiplicity: the OpenAI API has one n per request
            by_n: dict[int, list[str]] = {}
            for p in distinct:
                by_n.setdefault(counts[p], []).append(p)
            pools: dict[str, list[Generation]] = {}
            for m, ps in by_n.items():
                for p, gens in zip(ps, await self._complete(client, ps, params, m, seed)):
                    pools[p] = gens
            out = []
            for p in prompts:
                out.append(pools[p][:n])
                pools[p] = pools[p][n:]
            return out
        return await self._complete(client, prompts, params, n, seed)

    async def _complete(self, client: Any, prompts: list[str], params: SamplingParams, n: int, seed: int) -> list[list[Generation]]:
        body: dict[str, Any] = {
            "model": self.model, "prompt": prompts, "n": n, "max_tokens": params.max_new_tokens,
            "temperature": params.temperature, "top_p": params.top_p, "seed": seed, "return_token_ids": True,
        }
        if params.min_new_tokens:
            body["min_tokens"] = params.min_new_tokens
        r = await self._request(client, "POST", "/v1/completions", body)
        data = r.json()
        choices = sorted(data.get("choices", []), key=lambda c: c["index"])
        if len(choices) != len(prompts) * n:
            raise EngineError(f"{self.url} returned {len(choices)} choices for {len(prompts)} prompts x n={n}")
        usage = data.get("usage") or {}
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.usage.completion_tokens += int(usage.get("completion_tokens") or 0)
        prompt_lens = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        out: list[list[Generation]] = []
        for i, p_len in enumerate(prompt_lens):
            row = []
            for c in choices[i * n : (i + 1) * n]:
                text = c.get("text") or ""
                ids = c.get("token_ids")
                if ids is None:  # a server without vLLM's return_token_ids: count them here
                    ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                row.append(Generation(text, p_len, list(ids), c.get("finish_reason") == "stop"))
            out.append(row)
        return out


def _message(r: Any) -> str:
    try:
        err = r.json().get("error")
    except ValueError:
        return r.text[:200]
    if isinstance(err, dict):
        return str(err.get("message", err))[:300]
    return str(err)[:300]


def load_tokenizer(spec: str) -> Any:
    """The tokenizer of a model spec or directory, set up as :func:`spct.engine.load_model` sets it up."""
    from transformers import AutoTokenizer

    from spct.engine.models import _offline, model_dir
    from spct.engine.tiny import CHATML_TEMPLATE

    _offline()
    tok = AutoTokenizer.from_pretrained(model_dir(spec), local_files_only=True)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None) and "<|im_start|>" in tok.get_vocab():
        tok.chat_template = CHATML_TEMPLATE
    return tok


def open_engine(spec: str, **kw: Any) -> Any:
    """``openai:URL`` -> :class:`OpenAIEngine` (``tokenizer=``, ``model=``, ``api_key=``, ...); anything else -> ``Engine.load``."""
    if spec.startswith("openai:"):
        return OpenAIEngine(spec[len("openai:"):], **kw)
    from spct.engine.models import Engine

    return Engine.load(spec, **kw)
