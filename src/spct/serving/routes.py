"""The routes spct adds to KServe's app: OpenAI ``/v1/completions`` and ``/v1/chat/completions``,
and OpenRLHF's ``/get_reward``.

KServe's own OpenAI data plane needs vLLM in the image (its endpoints import it),
and serves under ``/openai/v1``; these routes answer where OpenAI clients look by
default and share the predictor's batcher, so generation, judging and V1/V2
traffic coalesce into the same sampling calls. Bodies arrive already size- and
type-checked by :class:`spct.serving.server.RequestGuard`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
from fastapi import Request  # at module level: FastAPI resolves the handlers' (string) annotations here

from spct.serving.openai_api import (
    Choice,
    OpenAIRequest,
    chat_body,
    completion_body,
    cut_at_stop,
    error_body,
    parse_chat,
    parse_completion,
    sse_events,
)
from spct.serving.predictor import GRMModel, ServingError
from spct.serving.protocol import JudgeResult, RequestError, loads


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import Response

    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _model_name(model: GRMModel, req: OpenAIRequest) -> None:
    if req.model is not None and req.model != model.name:
        # Not echoed: the name a client sends is its text, not ours.
        raise RequestError("model", f"this server serves the model {model.name!r}; send that name or leave model out", 404)


def _choices(gens: list[list[Any]], stops: tuple[str, ...]) -> tuple[list[Choice], int, int]:
    choices: list[Choice] = []
    prompt_tokens = completion_tokens = 0
    for row in gens:
        prompt_tokens += row[0].prompt_tokens if row else 0
        for g in row:
            text, stopped = cut_at_stop(g.text, stops) if stops else (g.text, False)
            choices.append(Choice(text, "stop" if (stopped or g.finished) else "length", list(g.completion_ids)))
            completion_tokens += g.completion_tokens
    return choices, prompt_tokens, completion_tokens


async def _generate(model: GRMModel, req: OpenAIRequest) -> dict[str, Any]:
    gen = req.gen
    assert gen is not None
    if req.kind == "chat":
        gen = replace(gen, prompts=(model.render_chat(req.messages),))
    tokens = model.check_gen(gen)
    # A named seed must reproduce the same text whoever else is waiting: such a request samples alone.
    (gens,) = await model.submit([gen], tokens, solo=gen.seed is not None)
    choices, pt, ct = _choices(gens, gen.stop)
    if req.kind == "chat":
        return chat_body(model.name, choices, pt, ct, req.return_token_ids)
    return completion_body(model.name, choices, pt, ct, req.return_token_ids)


async def _judge(model: GRMModel, req: OpenAIRequest) -> dict[str, Any]:
    jr = req.judge
    assert jr is not None
    asked = jr.return_critiques
    tokens = model.check_judge(jr, "spct.k_meta")
    (res,) = await model.submit([replace(jr, return_critiques=True)], tokens)
    model.record([res])
    choices = [Choice(text, "stop") for text in res.critiques or []]
    body = chat_body(model.name, choices, res.prompt_tokens, res.generated_tokens, False)
    verdict = res.to_v1()
    if not asked:
        verdict.pop("critiques", None)
        verdict.pop("principles", None)
    body["spct"] = verdict
    return body


def register(app: Any, model: GRMModel) -> None:
    from starlette.responses import StreamingResponse

    lim = model.settings.limits

    async def openai_route(request: Request, chat: bool) -> Any:
        try:
            raw = loads(await request.body(), lim)
            cfg = model.bundle.config if model.bundle else None
            if chat:
                req = parse_chat(raw, lim, model.defaults, cfg.max_new_tokens if cfg else 256)
            else:
                req = parse_completion(raw, lim)
            _model_name(model, req)
            body = await (_judge(model, req) if req.kind == "judge" else _generate(model, req))
        except RequestError as e:
            return _json(e.status, error_body(e))
        except ServingError as e:
            err = RequestError("server", str(e), e.status)
            return _json(e.status, error_body(err), {"retry-after": "1"} if e.status == 503 else None)
        if req.stream:
            events = sse_events(body, req.include_usage)

            async def stream() -> Any:
                for ev in events:
                    yield ev

            return StreamingResponse(stream(), media_type="text/event-stream")
        return _json(200, body)

    async def completions(request: Request) -> Any:
        return await openai_route(request, chat=False)

    async def chat_completions(request: Request) -> Any:
        return await openai_route(request, chat=True)

    async def get_reward(request: Request) -> Any:
        from spct.integrations.openrlhf import parse_reward_request, reward_body

        t0 = time.perf_counter()
        try:
            plan = parse_reward_request(loads(await request.body(), lim), lim, model.defaults)
            tokens = sum(model.check_judge(g.request, "k_meta") for g in plan.groups)
            reqs = [g.request for g in plan.groups]
            results: list[JudgeResult] = await model.submit(reqs, tokens) if reqs else []
        except RequestError as e:
            return _json(e.status, e.body())
        except ServingError as e:
            return _json(e.status, {"error": str(e), "field": "server"}, {"retry-after": "1"} if e.status == 503 else None)
        model.record(results)
        return _json(200, reward_body(plan, results, (time.perf_counter() - t0) * 1000))

    app.add_api_route("/v1/completions", completions, methods=["POST"], include_in_schema=True)
    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"], include_in_schema=True)
    app.add_api_route("/get_reward", get_reward, methods=["POST"], include_in_schema=True)
