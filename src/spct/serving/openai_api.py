"""The OpenAI wire format: ``/v1/completions`` and ``/v1/chat/completions`` bodies in, answers out.

What an OpenAI client (the ``openai`` package, verl's ``genrm_remote``, NeMo Gym,
spct's own :class:`spct.engine.openai.OpenAIEngine`) sends is validated by hand,
like the V1/V2 bodies: every refusal names the field, never echoes content.

Plain requests get the GRM's text. A chat request carrying the extension
``"spct": {"responses": [...], "k": 4, ...}`` is a judge request instead: the
messages are the conversation being judged, the ``k`` choices are the sampled
critiques, and the answer's ``spct`` field holds the verdict (scores, Voting@k,
MetaRM@k), the same object V1 returns per instance.

Fields a client sends that spct cannot honour are accepted only at their neutral
value (``logprobs: null``, ``presence_penalty: 0``, ...), so a request is never
answered as if it had been honoured. ``return_token_ids`` is vLLM's extension
(choices carry ``token_ids``); ``min_tokens`` too.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from spct.serving.protocol import (
    Defaults,
    JudgeRequest,
    JudgeResult,
    Limits,
    RequestError,
    _check_total,
    _float,
    _int,
    _messages,
    _obj,
    _options,
    _responses,
    _text,
    _type,
)
from spct.types import Message

# field -> the values it is accepted with (what "not asking for it" looks like)
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "user": (), "stream_options": (), "logprobs": (None, False, 0), "top_logprobs": (None, 0),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "repetition_penalty": (None, 1, 1.0),
    "echo": (None, False), "best_of": (None, 1), "suffix": (None, ""), "logit_bias": (None, {}),
    "top_k": (None, -1, 0), "skip_special_tokens": (None, True), "response_format": (None, {"type": "text"}),
    "parallel_tool_calls": (None, False, True), "tools": (None, []), "tool_choice": (None, "none", "auto"),
    "ignore_eos": (None, False), "include_stop_str_in_output": (None, False), "min_p": (None, 0, 0.0),
}
_SAMPLING = ("model", "n", "temperature", "top_p", "max_tokens", "min_tokens", "seed", "stop", "stream",
             "return_token_ids")
COMPLETION_FIELDS = (*_SAMPLING, "prompt", *_NEUTRAL)
CHAT_FIELDS = (*_SAMPLING, "messages", "max_completion_tokens", "spct", *_NEUTRAL)
JUDGE_FIELDS = ("responses", "k", "k_meta", "return_critiques")
MAX_PROMPTS = 256
MAX_N = 32
MAX_STOP = 4


@dataclass(frozen=True)
class GenRequest:
    """Raw generation: ``n`` completions of every prompt (rendered text, sent to the model as is)."""

    prompts: tuple[str, ...]
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    min_tokens: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    field: str = "prompt"


@dataclass
class OpenAIRequest:
    kind: str  # "completion" | "chat" | "judge"
    model: str | None
    stream: bool
    include_usage: bool
    return_token_ids: bool
    gen: GenRequest | None = None  # completion/chat (a chat's prompt is rendered by the predictor)
    messages: tuple[Message, ...] | None = None  # chat
    judge: JudgeRequest | None = None


def _neutral(body: dict[str, Any]) -> None:
    for key, ok in _NEUTRAL.items():
        if key in body and ok and body[key] not in ok:
            raise RequestError(key, f"not supported by this server; leave it out or send {ok[-1]!r}")
    if "stream_options" in body and body["stream_options"] is not None:
        _obj(body["stream_options"], "stream_options", ("include_usage", "continuous_usage_stats"))


def _stop(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    stops = [v] if isinstance(v, str) else v
    if not isinstance(stops, list) or len(stops) > MAX_STOP or not all(isinstance(s, str) and s for s in stops):
        raise RequestError("stop", f"must be a non-empty string or an array of up to {MAX_STOP} of them")
    return tuple(stops)


def _sampling(body: dict[str, Any], limits: Limits, default_max_tokens: int, prompts: tuple[str, ...], field: str) -> GenRequest:
    n = 1 if body.get("n") is None else _int(body["n"], "n", 1, MAX_N)
    temperature = 1.0 if body.get("temperature") is None else _float(body["temperature"], "temperature", 0.0, limits.max_temperature)
    top_p = 1.0 if body.get("top_p") is None else _float(body["top_p"], "top_p", 0.0, 1.0)
    if top_p == 0:
        raise RequestError("top_p", "must be above 0")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = default_max_tokens if body.get(key) is None else _int(body[key], key, 1, limits.max_new_tokens)
    min_tokens = 0 if body.get("min_tokens") is None else _int(body["min_tokens"], "min_tokens", 0, max_tokens)
    seed = None if body.get("seed") is None else _int(body["seed"], "seed", 0, 2**63 - 1)
    return GenRequest(prompts, n, temperature, top_p, max_tokens, min_tokens, seed, _stop(body.get("stop")), field)


def _flags(body: dict[str, Any]) -> tuple[str | None, bool, bool, bool]:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("model", f"must be a string, got {_type(model)}")
    out = []
    for key in ("stream", "return_token_ids"):
        v = body.get(key)
        if v is not None and not isinstance(v, bool):
            raise RequestError(key, f"must be true or false, got {_type(v)}")
        out.append(bool(v))
    usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return model, out[0], usage, out[1]


def parse_completion(body: Any, limits: Limits = Limits(), default_max_tokens: int = 16) -> OpenAIRequest:
    """``POST /v1/completions``: ``prompt`` is a string or an array of strings (token-id prompts are refused)."""
    body = _obj(body, "body", COMPLETION_FIELDS)
    _neutral(body)
    if "prompt" not in body:
        raise RequestError("prompt", "missing; send the text to continue (a string or an array of strings)")
    raw = body["prompt"]
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise RequestError("prompt", f"must be a string or a non-empty array of strings, got {_type(raw)}")
    if len(items) > MAX_PROMPTS:
        raise RequestError("prompt", f"at most {MAX_PROMPTS} prompts per request, got {len(items)}", 413)
    where = "prompt" if isinstance(raw, str) else "prompt[{}]"
    prompts = tuple(_text(p, where.format(i), limits, nonblank=True, max_chars=limits.max_total_chars)
                    for i, p in enumerate(items))
    model, stream, usage, ids = _flags(body)
    gen = _sampling(body, limits, default_max_tokens, prompts, "prompt")
    if len(prompts) * gen.n > MAX_PROMPTS:
        raise RequestError("n", f"prompts x n is at most {MAX_PROMPTS}, got {len(prompts) * gen.n}", 413)
    return OpenAIRequest("completion", model, stream, usage, ids, gen=gen)


def parse_chat(body: Any, limits: Limits = Limits(), defaults: Defaults = Defaults(), default_max_tokens: int = 256) -> OpenAIRequest:
    """``POST /v1/chat/completions``: the GRM's reply, or with ``spct`` a judge request."""
    body = _obj(body, "body", CHAT_FIELDS)
    _neutral(body)
    if "messages" not in body:
        raise RequestError("messages", "missing; send [{\"role\": ..., \"content\": ...}, ...]")
    model, stream, usage, ids = _flags(body)
    if body.get("spct") is None:
        messages = _chat_messages(body["messages"], limits)
        gen = _sampling(body, limits, default_max_tokens, (), "messages")
        return OpenAIRequest("chat", model, stream, usage, ids, gen=gen, messages=messages)
    ext = _obj(body["spct"], "spct", JUDGE_FIELDS)
    if "responses" not in ext:
        raise RequestError("spct.responses", "missing; give 1 or more responses to judge")
    messages = _messages(body["messages"], "messages", limits)
    responses = _responses(ext["responses"], "spct.responses", limits)
    for key in ("max_tokens", "max_completion_tokens", "min_tokens", "stop", "top_p"):
        if body.get(key) is not None:
            raise RequestError(key, "a judge request samples with the model's settings; leave it out")
    opts_in = {k: ext[k] for k in ("k", "k_meta", "return_critiques") if k in ext}
    if body.get("n") is not None:
        n = _int(body["n"], "n", 1, limits.max_k)
        if "k" in opts_in and opts_in["k"] != n:
            raise RequestError("n", f"differs from spct.k ({opts_in['k']}); give one of them")
        opts_in["k"] = n
    for key in ("temperature", "seed"):
        if body.get(key) is not None:
            opts_in[key] = body[key]
    where = {o: f"spct.{o}" if o in ("k", "k_meta", "return_critiques") else o for o in ("k", "k_meta", "seed", "temperature", "return_critiques")}
    if body.get("n") is not None and "k" not in ext:
        where["k"] = "n"
    opts = _options(opts_in, where, limits, defaults)
    req = _check_total(JudgeRequest(messages, responses, field="messages", **opts), "messages", limits)
    return OpenAIRequest("judge", model, stream, usage, ids, judge=req)


def _chat_messages(v: Any, limits: Limits) -> tuple[Message, ...]:
    """Any conversation the chat template takes (it need not end with a user turn)."""
    if not isinstance(v, list) or not v:
        raise RequestError("messages", f"must be a non-empty array of {{role, content}} objects, got {_type(v)}")
    if len(v) > limits.max_messages:
        raise RequestError("messages", f"must hold 1..{limits.max_messages} messages, got {len(v)}", 413)
    out = []
    total = 0
    for i, m in enumerate(v):
        w = f"messages[{i}]"
        m = _obj(m, w, ("role", "content", "name"))
        for req in ("role", "content"):
            if req not in m:
                raise RequestError(f"{w}.{req}", "missing")
        if m["role"] not in ("system", "user", "assistant"):
            raise RequestError(f"{w}.role", "must be one of system, user, assistant")
        content = m["content"]
        if isinstance(content, list):  # the content-parts form: text parts only
            parts = []
            for j, part in enumerate(content):
                part = _obj(part, f"{w}.content[{j}]", ("type", "text"))
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise RequestError(f"{w}.content[{j}]", "only {\"type\": \"text\", \"text\": ...} parts are supported")
                parts.append(part["text"])
            content = "".join(parts)
        text = _text(content, f"{w}.content", limits, nonblank=False)
        total += len(text)
        out.append(Message(role=m["role"], content=text))
    if total > limits.max_total_chars:
        raise RequestError("messages", f"{total} characters in all is over the limit of {limits.max_total_chars}", 413)
    return tuple(out)


# -- answers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str  # "stop" | "length"
    token_ids: list[int] | None = None


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """Text up to the first stop string (not included), and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def completion_body(model: str, choices: list[Choice], prompt_tokens: int, completion_tokens: int, ids: bool) -> dict[str, Any]:
    out = []
    for i, c in enumerate(choices):
        d: dict[str, Any] = {"index": i, "text": c.text, "logprobs": None, "finish_reason": c.finish_reason}
        if ids:
            d["token_ids"] = c.token_ids
        out.append(d)
    return {"id": _id("cmpl"), "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": out, "usage": _usage(prompt_tokens, completion_tokens)}


def chat_body(model: str, choices: list[Choice], prompt_tokens: int, completion_tokens: int, ids: bool,
              verdict: JudgeResult | None = None) -> dict[str, Any]:
    out = []
    for i, c in enumerate(choices):
        d: dict[str, Any] = {"index": i, "message": {"role": "assistant", "content": c.text}, "logprobs": None,
                             "finish_reason": c.finish_reason}
        if ids:
            d["token_ids"] = c.token_ids
        out.append(d)
    body = {"id": _id("chatcmpl"), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": out, "usage": _usage(prompt_tokens, completion_tokens)}
    if verdict is not None:
        body["spct"] = verdict.to_v1()
    return body


def sse_events(body: dict[str, Any], include_usage: bool) -> list[bytes]:
    """A finished answer as OpenAI's stream: per choice a content chunk then a finish chunk, [DONE].

    The text arrives whole once generation has finished (the batcher generates
    whole sequences), but in the event shapes every OpenAI client parses.
    """
    chat = body["object"] == "chat.completion"
    head = {"id": body["id"], "object": "chat.completion.chunk" if chat else "text_completion",
            "created": body["created"], "model": body["model"]}
    events = []
    for c in body["choices"]:
        if chat:
            first = {"index": c["index"], "delta": {"role": "assistant", "content": c["message"]["content"]},
                     "logprobs": None, "finish_reason": None}
            last = {"index": c["index"], "delta": {}, "logprobs": None, "finish_reason": c["finish_reason"]}
        else:
            first = {"index": c["index"], "text": c["text"], "logprobs": None, "finish_reason": None}
            last = {"index": c["index"], "text": "", "logprobs": None, "finish_reason": c["finish_reason"]}
        if "token_ids" in c:
            first["token_ids"] = c["token_ids"]
        events.append({**head, "choices": [first]})
        events.append({**head, "choices": [last]})
    if "spct" in body:
        events[-1]["spct"] = body["spct"]
    if include_usage:
        events.append({**head, "choices": [], "usage": body["usage"]})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def error_body(e: RequestError) -> dict[str, Any]:
    """OpenAI's error shape (what its clients read), plus spct's ``field``."""
    kind = "invalid_request_error" if e.status < 500 else "server_error"
    return {"error": {"message": str(e), "type": kind, "param": e.field, "code": e.status}, "field": e.field}
