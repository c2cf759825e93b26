"""Judge requests in and verdicts out, for KServe's V1 and V2 (Open Inference) protocols.

Validation is hand-written and runs before anything touches the model: every
bad body gets a :class:`RequestError` naming the field (``instances[0].k``,
``inputs[2].shape``) and never echoing request content, so error answers and
logs stay free of what users send.

V1 ``POST /v1/models/NAME:predict``::

    {"instances": [{"messages": [{"role": "user", "content": "2+2?"}],
                    "responses": ["4", "5"], "k": 4, "return_critiques": true}]}
    -> {"predictions": [{"scores": [31, 9], "best": 0, "tied": [0], ...}], ...}

V2 ``POST /v2/models/NAME/infer``: the same fields as named tensors, one judge
item per request (``prompt`` or ``messages`` BYTES, ``responses`` BYTES [n],
``k``/``k_meta``/``seed`` INT, ``temperature`` FP, ``return_critiques`` BOOL),
each option also accepted under the request's ``parameters``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from spct.engine.sampler import SamplingParams
from spct.types import Message

_SAMPLING = SamplingParams()  # the one place sampling defaults are declared

ROLES = ("system", "user", "assistant")
OPTIONS = ("k", "k_meta", "seed", "temperature", "return_critiques")
INT_TYPES = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
FP_TYPES = {"FP32", "FP64"}
V2_INPUTS = {
    "prompt": {"BYTES"},
    "messages": {"BYTES"},
    "responses": {"BYTES"},
    "k": INT_TYPES,
    "k_meta": INT_TYPES,
    "seed": INT_TYPES,
    "temperature": FP_TYPES,
    "return_critiques": {"BOOL"},
}
V2_OUTPUTS = ("scores", "best", "tied", "sample_scores", "parsed", "meta_scores", "critiques", "principles", "parse_failures")


class RequestError(ValueError):
    """A request the server refuses: ``field`` names the offending part, ``status`` the HTTP code."""

    def __init__(self, field: str, message: str, status: int = 400):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class Limits:
    """Size limits: anything larger answers 4xx before it can reach the model."""

    max_body_bytes: int = 1_000_000
    max_instances: int = 8
    max_responses: int = 8
    max_messages: int = 32
    max_chars: int = 16_000  # one message or response
    max_total_chars: int = 64_000  # the whole judge item
    max_k: int = 32
    max_prompt_tokens: int = 4096  # one rendered judge prompt
    max_temperature: float = 2.0
    max_new_tokens: int = 4096  # what an OpenAI request may ask for (max_tokens)
    # An oversized body is still read (and dropped) up to this much, so the client
    # gets its 413 instead of a reset from closing on unread data; past it the
    # connection is closed.
    max_discard_bytes: int = 64_000_000


@dataclass(frozen=True)
class Defaults:
    """What a request gets for the options it leaves out (from the bundle's ``spct.json``)."""

    k: int = 1
    k_meta: int | None = None
    temperature: float = _SAMPLING.temperature
    seed: int = 0


@dataclass(frozen=True)
class JudgeRequest:
    messages: tuple[Message, ...]
    responses: tuple[str, ...]
    k: int = 1
    k_meta: int | None = None
    temperature: float = _SAMPLING.temperature
    seed: int = 0
    return_critiques: bool = False
    field: str = ""  # where it came from, for errors found later (token limits)


def _type(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "integer" if isinstance(v, int) else "number" if isinstance(v, float) else type(v).__name__
    )


def loads(body: bytes, limits: Limits) -> Any:
    """Parse a JSON body with the same parser KServe uses (orjson), within the size limit."""
    if len(body) > limits.max_body_bytes:
        raise RequestError("body", f"{len(body)} bytes is over the limit of {limits.max_body_bytes}", 413)
    if not body.strip():
        raise RequestError("body", "empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        # orjson's message gives line/column only, never the content.
        raise RequestError("body", f"not valid JSON ({e.args[0] if e.args else 'decode error'})") from None


def _obj(v: Any, where: str, allowed: tuple[str, ...] | set[str]) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise RequestError(where, f"must be an object, got {_type(v)}")
    for key in v:
        if key not in allowed:
            shown = key if key and len(key) <= 40 and key.isprintable() else "<empty, long or unprintable name>"
            raise RequestError(f"{where}.{shown}" if where != "body" else shown,
                               f"unknown field (allowed: {', '.join(sorted(allowed))})")
    return v


def _int(v: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise RequestError(where, f"must be an integer, got {_type(v)}")
    if not lo <= v <= hi:
        raise RequestError(where, f"must be in {lo}..{hi}, got {v}")
    return v


def _float(v: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise RequestError(where, f"must be a number, got {_type(v)}")
    if not math.isfinite(v) or not lo <= v <= hi:
        raise RequestError(where, f"must be a number in {lo}..{hi}, got {v}")
    return float(v)


def _text(v: Any, where: str, limits: Limits, nonblank: bool, max_chars: int | None = None) -> str:
    if not isinstance(v, str):
        raise RequestError(where, f"must be a string, got {_type(v)}")
    cap = max_chars or limits.max_chars
    if len(v) > cap:
        raise RequestError(where, f"{len(v)} characters is over the limit of {cap}", 413)
    if nonblank and not v.strip():
        raise RequestError(where, "must not be empty")
    return v


def _messages(v: Any, where: str, limits: Limits) -> tuple[Message, ...]:
    if not isinstance(v, list):
        raise RequestError(where, f"must be an array of {{role, content}} objects, got {_type(v)}")
    if not 1 <= len(v) <= limits.max_messages:
        raise RequestError(where, f"must hold 1..{limits.max_messages} messages, got {len(v)}")
    out = []
    for i, m in enumerate(v):
        w = f"{where}[{i}]"
        m = _obj(m, w, ("role", "content"))
        for req in ("role", "content"):
            if req not in m:
                raise RequestError(f"{w}.{req}", "missing")
        if m["role"] not in ROLES:
            raise RequestError(f"{w}.role", f"must be one of {', '.join(ROLES)}")
        out.append(Message(role=m["role"], content=_text(m["content"], f"{w}.content", limits, nonblank=False)))
    if out[-1].role != "user":
        raise RequestError(f"{where}[{len(out) - 1}].role", "the conversation must end with a user turn (the responses answer it)")
    if not out[-1].content.strip():
        raise RequestError(f"{where}[{len(out) - 1}].content", "the final user turn must not be empty")
    return tuple(out)


def _responses(v: Any, where: str, limits: Limits) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise RequestError(where, f"must be an array of strings, got {_type(v)}")
    if not 1 <= len(v) <= limits.max_responses:
        raise RequestError(where, f"must hold 1..{limits.max_responses} responses, got {len(v)}", 413 if len(v) > limits.max_responses else 400)
    return tuple(_text(r, f"{where}[{i}]", limits, nonblank=True) for i, r in enumerate(v))


def _options(opts: dict[str, Any], where: dict[str, str], limits: Limits, defaults: Defaults) -> dict[str, Any]:
    out: dict[str, Any] = {"k": defaults.k, "k_meta": defaults.k_meta, "temperature": defaults.temperature, "seed": defaults.seed,
                           "return_critiques": False}
    if "k" in opts:
        out["k"] = _int(opts["k"], where["k"], 1, limits.max_k)
    if "k_meta" in opts:
        out["k_meta"] = None if opts["k_meta"] is None else _int(opts["k_meta"], where["k_meta"], 1, limits.max_k)
    if out["k_meta"] is not None and out["k_meta"] > out["k"]:
        if "k_meta" in opts:
            raise RequestError(where["k_meta"], f"must be at most k={out['k']}, got {out['k_meta']}")
        out["k_meta"] = None if out["k"] < 2 else out["k"] // 2  # the model's default does not fit this k
    if "temperature" in opts:
        out["temperature"] = _float(opts["temperature"], where["temperature"], 0.0, limits.max_temperature)
    if "seed" in opts:
        out["seed"] = _int(opts["seed"], where["seed"], 0, 2**63 - 1)
    if "return_critiques" in opts:
        if not isinstance(opts["return_critiques"], bool):
            raise RequestError(where["return_critiques"], f"must be true or false, got {_type(opts['return_critiques'])}")
        out["return_critiques"] = opts["return_critiques"]
    return out


def _check_total(req: JudgeRequest, where: str, limits: Limits) -> JudgeRequest:
    total = sum(len(m.content) for m in req.messages) + sum(len(r) for r in req.responses)
    if total > limits.max_total_chars:
        raise RequestError(where, f"{total} characters in all is over the limit of {limits.max_total_chars}", 413)
    return req


def parse_v1(body: Any, limits: Limits = Limits(), defaults: Defaults = Defaults()) -> list[JudgeRequest]:
    """``{"instances": [...]}`` -> one :class:`JudgeRequest` per instance."""
    body = _obj(body, "body", ("instances",))
    if "instances" not in body:
        raise RequestError("instances", "missing; send {\"instances\": [{\"messages\" or \"prompt\", \"responses\", ...}]}")
    inst = body["instances"]
    if not isinstance(inst, list):
        raise RequestError("instances", f"must be an array, got {_type(inst)}")
    if not 1 <= len(inst) <= limits.max_instances:
        raise RequestError("instances", f"must hold 1..{limits.max_instances} items, got {len(inst)}", 413 if inst else 400)
    out = []
    for i, item in enumerate(inst):
        w = f"instances[{i}]"
        item = _obj(item, w, ("messages", "prompt", "responses", *OPTIONS))
        if ("messages" in item) == ("prompt" in item):
            raise RequestError(f"{w}.messages", "give exactly one of messages or prompt")
        if "prompt" in item:
            messages = (Message(role="user", content=_text(item["prompt"], f"{w}.prompt", limits, nonblank=True)),)
        else:
            messages = _messages(item["messages"], f"{w}.messages", limits)
        if "responses" not in item:
            raise RequestError(f"{w}.responses", "missing; give 1 or more responses to judge")
        responses = _responses(item["responses"], f"{w}.responses", limits)
        opts = _options(item, {o: f"{w}.{o}" for o in OPTIONS}, limits, defaults)
        out.append(_check_total(JudgeRequest(messages, responses, field=w, **opts), w, limits))
    return out


def _scalars(v: Any, where: str) -> None:
    """V2 parameters are flat: string, number or boolean values only."""
    if not isinstance(v, dict):
        raise RequestError(where, f"must be an object, got {_type(v)}")
    for key, x in v.items():
        if not isinstance(x, (str, int, float, bool)):
            raise RequestError(f"{where}.{key}" if key and len(key) <= 40 and key.isprintable() else where,
                               f"parameter values must be a string, number or boolean, got {_type(x)}")


def _v2_tensor(t: Any, i: int, limits: Limits) -> tuple[str, list[Any]]:
    w = f"inputs[{i}]"
    t = _obj(t, w, ("name", "shape", "datatype", "data", "parameters"))
    for req in ("name", "shape", "datatype", "data"):
        if req not in t:
            raise RequestError(f"{w}.{req}", "missing")
    name = t["name"]
    if not isinstance(name, str) or name not in V2_INPUTS:
        raise RequestError(f"{w}.name", f"must be one of {', '.join(V2_INPUTS)}")
    dtype = t["datatype"]
    if not isinstance(dtype, str) or dtype not in V2_INPUTS[name]:
        raise RequestError(f"{w}.datatype", f"input {name!r} must be {' or '.join(sorted(V2_INPUTS[name]))}")
    shape, data = t["shape"], t["data"]
    if not isinstance(shape, list) or not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape):
        raise RequestError(f"{w}.shape", "must be a non-empty array of non-negative integers")
    if not isinstance(data, list):
        raise RequestError(f"{w}.data", f"must be a flat array, got {_type(data)}")
    if math.prod(shape) != len(data):
        raise RequestError(f"{w}.shape", f"shape {shape} holds {math.prod(shape)} elements but data has {len(data)}")
    if len(shape) != 1:
        raise RequestError(f"{w}.shape", "must be one-dimensional, [n]")
    if "parameters" in t:
        _scalars(t["parameters"], f"{w}.parameters")
    for j, x in enumerate(data):
        ok = (
            isinstance(x, str) if dtype == "BYTES"
            else isinstance(x, bool) if dtype == "BOOL"
            else isinstance(x, int) and not isinstance(x, bool) if dtype in INT_TYPES
            else isinstance(x, (int, float)) and not isinstance(x, bool)
        )
        if not ok:
            raise RequestError(f"{w}.data[{j}]", f"must be a {dtype} element, got {_type(x)}")
    if name not in ("messages", "responses") and len(data) != 1:
        raise RequestError(f"{w}.shape", f"input {name!r} is a scalar: shape [1]")
    return name, data


def parse_v2(body: Any, limits: Limits = Limits(), defaults: Defaults = Defaults()) -> JudgeRequest:
    """An Open Inference Protocol request body (as JSON) -> one :class:`JudgeRequest`."""
    body = _obj(body, "body", ("id", "inputs", "parameters", "outputs"))
    if "id" in body and not isinstance(body["id"], str):
        raise RequestError("id", f"must be a string, got {_type(body['id'])}")
    if "inputs" not in body:
        raise RequestError("inputs", "missing; send named tensors: prompt or messages, responses, [k, ...]")
    inputs = body["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("inputs", "must be a non-empty array of tensors")
    if len(inputs) > len(V2_INPUTS):
        raise RequestError("inputs", f"at most {len(V2_INPUTS)} tensors, got {len(inputs)}")
    tensors: dict[str, list[Any]] = {}
    where: dict[str, str] = {}
    for i, t in enumerate(inputs):
        name, data = _v2_tensor(t, i, limits)
        if name in tensors:
            raise RequestError(f"inputs[{i}].name", f"input {name!r} given twice")
        tensors[name], where[name] = data, f"inputs[{i}]"
    params = body.get("parameters", {})
    _obj(params, "parameters", OPTIONS)
    _scalars(params, "parameters")
    for key in params:
        if key in tensors:
            raise RequestError(f"parameters.{key}", f"given both as an input ({where[key]}) and a parameter")
    outs = body.get("outputs", [])
    if not isinstance(outs, list):
        raise RequestError("outputs", f"must be an array, got {_type(outs)}")
    for i, o in enumerate(outs):
        o = _obj(o, f"outputs[{i}]", ("name", "parameters"))
        if o.get("name") not in V2_OUTPUTS:
            raise RequestError(f"outputs[{i}].name", f"must be one of {', '.join(V2_OUTPUTS)}")
        if "parameters" in o:
            _scalars(o["parameters"], f"outputs[{i}].parameters")

    if ("messages" in tensors) == ("prompt" in tensors):
        raise RequestError("inputs", "give exactly one of the inputs 'messages' or 'prompt'")
    if "prompt" in tensors:
        messages = (Message(role="user", content=_text(tensors["prompt"][0], f"{where['prompt']}.data[0]", limits, nonblank=True)),)
    else:
        w = f"{where['messages']}.data"
        decoded = []
        for j, s in enumerate(tensors["messages"]):
            try:
                decoded.append(orjson.loads(s))
            except orjson.JSONDecodeError:
                raise RequestError(f"{w}[{j}]", "must be a JSON object string {\"role\": ..., \"content\": ...}") from None
        messages = _messages(decoded, w, limits)
    if "responses" not in tensors:
        raise RequestError("inputs", "missing the input 'responses' (BYTES [n])")
    responses = _responses(tensors["responses"], f"{where['responses']}.data", limits)
    opts_in = {**params, **{k: v[0] for k, v in tensors.items() if k in OPTIONS}}
    opt_where = {o: f"{where[o]}.data[0]" if o in where else f"parameters.{o}" for o in OPTIONS}
    opts = _options(opts_in, opt_where, limits, defaults)
    return _check_total(JudgeRequest(messages, responses, field="inputs", **opts), "inputs", limits)


def v2_body_from_infer_request(req: Any) -> dict[str, Any]:
    """KServe's decoded ``InferRequest`` back to the JSON shape :func:`parse_v2` reads."""

    def plain(x: Any) -> Any:
        if isinstance(x, bytes):
            return x.decode("utf-8", errors="strict")
        return x.item() if hasattr(x, "item") else x

    inputs = []
    for t in req.inputs:
        data = t.data.tolist() if hasattr(t.data, "tolist") else list(t.data or [])
        inputs.append({"name": t.name, "shape": list(t.shape), "datatype": t.datatype, "data": [plain(x) for x in data]})
    body: dict[str, Any] = {"inputs": inputs}
    if req.parameters:
        body["parameters"] = {k: plain(v) for k, v in dict(req.parameters).items()}
    return body


@dataclass
class Timings:
    queue_ms: float = 0.0
    generate_ms: float = 0.0
    total_ms: float = 0.0
    batch_requests: int = 0
    batch_samples: int = 0


@dataclass
class JudgeResult:
    """One judged item: what both protocols report."""

    scores: list[int]  # per response, summed over the voting samples
    best: int
    tied: list[int]
    sample_scores: list[list[int] | None]  # per sample, original response order; None = no parse
    used: int
    failed: int
    kept: list[int]
    parse_failures: list[dict[str, Any]]
    generated_tokens: int
    prompt_tokens: int  # summed over the samples (each sample's prompt has its own response order)
    meta_scores: list[float] | None = None
    critiques: list[str] | None = None
    principles: list[list[dict[str, Any]]] | None = None
    timings: Timings = field(default_factory=Timings)

    def to_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scores": self.scores, "best": self.best, "tied": self.tied, "k": len(self.sample_scores),
            "sample_scores": self.sample_scores, "used": self.used, "failed": self.failed, "kept": self.kept,
            "parse_failures": self.parse_failures, "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
        }
        if self.meta_scores is not None:
            out["meta_scores"] = self.meta_scores
        if self.critiques is not None:
            out["critiques"] = self.critiques
            out["principles"] = self.principles
        return out
