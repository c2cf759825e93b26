"""Run the predictor in KServe's model server, with authentication and a request guard in front of it.

The guard is an ASGI middleware on KServe's FastAPI app. For the judge and
generation routes it enforces the body-size limit while reading, refuses
content types and CloudEvents the predictor does not speak, and (V1/V2) runs the
full request validation, so every malformed body answers 4xx with
``{"error", "field"}`` before KServe's own decoding (which would answer 500 for
some shapes and FastAPI's 422 format for others). Valid bodies are replayed
unchanged.

Every refusal first reads what the client is still sending (up to
``Limits.max_discard_bytes``) and drops it: answering while the body is unread
and then closing makes the kernel reset the connection, and the client sees the
reset instead of its 413. Past that cap the answer says ``connection: close``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import time
from typing import Any

import orjson

from spct.serving import metrics
from spct.serving.auth import BearerAuth
from spct.serving.openai_api import error_body as openai_error
from spct.serving.predictor import GRMModel, ServerSettings, ServingError
from spct.serving.protocol import Limits, RequestError, loads, parse_v1, parse_v2

log = logging.getLogger("spct.serving")
_V1 = re.compile(r"^/v1/models/(?P<name>[^/]+):predict$")
_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/[^/]+)?/infer$")
_OPENAI = ("/v1/completions", "/v1/chat/completions")
REWARD_ROUTE = "/get_reward"
_JSON_TYPES = ("application/json",)


def route_kind(path: str) -> str | None:
    """Which guarded route a path is: v1, v2, openai, reward; None for KServe's others."""
    if _V1.match(path):
        return "v1"
    if _V2.match(path):
        return "v2"
    if path in _OPENAI:
        return "openai"
    if path == REWARD_ROUTE:
        return "reward"
    return None


def _reply(status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> tuple[dict, dict]:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())] + (extra or [])
    return {"type": "http.response.start", "status": status, "headers": headers}, {"type": "http.response.body", "body": data}


async def drain(receive: Any, cap: int, already: int = 0) -> bool:
    """Read and drop the rest of a request body; False if it went past ``cap`` (close the connection)."""
    size = already
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return True
        size += len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return True
        if size > cap:
            return False


async def refuse(scope: dict, receive: Any, send: Any, error: RequestError, *, cap: int, read: int = 0,
                 body_done: bool = False, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer an error in the route's own shape, after the client's body has been read."""
    complete = True if body_done else await drain(receive, cap, read)
    headers = list(extra or [])
    if not complete:
        headers.append((b"connection", b"close"))
    if error.status == 503:
        headers.append((b"retry-after", b"1"))
    body = openai_error(error) if route_kind(scope["path"]) == "openai" else error.body()
    start, payload = _reply(error.status, body, headers)
    await send(start)
    await send(payload)


class RequestGuard:
    """Validate judge and generation requests before anyone decodes them; count answers per status."""

    def __init__(self, app: Any, model: GRMModel):
        self.app = app
        self.model = model

    @property
    def limits(self) -> Limits:
        return self.model.settings.limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        proto = route_kind(scope["path"])
        if proto is None:
            return await self.app(scope, receive, send)

        status_seen: list[int] = []

        async def counting_send(msg: dict) -> None:
            if msg["type"] == "http.response.start":
                status_seen.append(msg["status"])
            await send(msg)

        t0 = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        try:
            await self._guarded(scope, receive, counting_send, proto)
        finally:
            metrics.IN_FLIGHT.dec()
        code = str(status_seen[0]) if status_seen else "none"
        metrics.REQUESTS.labels(proto, code).inc()
        metrics.LATENCY.labels(proto).observe(time.perf_counter() - t0)

    async def _guarded(self, scope: dict, receive: Any, counting_send: Any, proto: str) -> None:
        state = {"read": 0, "done": False}
        try:
            body = await self._check(scope, receive, proto, state)
        except RequestError as e:
            await refuse(scope, receive, counting_send, e, cap=self.limits.max_discard_bytes,
                         read=state["read"], body_done=state["done"])
        else:
            sent = False

            async def replay() -> dict:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, counting_send)

    async def _check(self, scope: dict, receive: Any, proto: str, state: dict) -> bytes:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if "inference-header-content-length" in headers:
            raise RequestError("inference-header-content-length", "the binary tensor extension is not supported; send JSON", 415)
        if any(k.startswith("ce-") for k in headers):
            raise RequestError("ce-*", "CloudEvents are not supported; send a plain JSON body", 415)
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype not in _JSON_TYPES:
            raise RequestError("content-type", "must be application/json", 415)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise RequestError("content-length", "not a number")
            if int(declared) > self.limits.max_body_bytes:
                raise RequestError("body", f"{declared} bytes is over the limit of {self.limits.max_body_bytes}", 413)
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                state["done"] = True
                raise RequestError("body", "the client disconnected before sending the body")
            chunk = msg.get("body", b"")
            size += len(chunk)
            state["read"] = size
            state["done"] = not msg.get("more_body", False)
            if size > self.limits.max_body_bytes:
                raise RequestError("body", f"over the limit of {self.limits.max_body_bytes} bytes", 413)
            chunks.append(chunk)
            if state["done"]:
                break
        body = b"".join(chunks)
        if proto in ("v1", "v2"):
            parsed = loads(body, self.limits)
            if proto == "v1":
                parse_v1(parsed, self.limits, self.model.defaults)
            else:
                parse_v2(parsed, self.limits, self.model.defaults)
        return body


async def _request_error(_: Any, exc: RequestError) -> Any:
    from fastapi.responses import ORJSONResponse

    return ORJSONResponse(status_code=exc.status, content=exc.body())


async def _serving_error(_: Any, exc: ServingError) -> Any:
    from fastapi.responses import ORJSONResponse

    headers = {"retry-after": "1"} if exc.status == 503 else None
    return ORJSONResponse(status_code=exc.status, content={"error": str(exc)}, headers=headers)


async def _validation_error(_: Any, exc: Any) -> Any:
    # A safety net: FastAPI's own body validation (V2) should never be reached.
    from fastapi.responses import ORJSONResponse

    err = (exc.errors() or [{}])[0]
    where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
    return ORJSONResponse(status_code=400, content={"error": f"{where}: {err.get('msg', 'invalid')}", "field": where})


def install(app: Any, model: GRMModel) -> None:
    """Put the routes, guard, authentication and error handlers on KServe's FastAPI app (before it starts)."""
    from fastapi.exceptions import RequestValidationError

    from spct.serving.routes import register

    register(app, model)
    app.add_middleware(RequestGuard, model=model)
    if model.settings.api_tokens:
        cap = model.settings.limits.max_discard_bytes

        async def refuse_auth(scope: dict, receive: Any, send: Any, status: int, field: str, message: str, extra: list) -> None:
            metrics.REQUESTS.labels(route_kind(scope["path"]) or "other", str(status)).inc()
            await refuse(scope, receive, send, RequestError(field, message, status), cap=cap, extra=extra)

        # Added last, so it wraps the guard: nothing reads a body before the token is checked.
        app.add_middleware(BearerAuth, tokens=model.settings.api_tokens, refuse=refuse_auth)
    app.add_exception_handler(RequestError, _request_error)
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def _import_kserve_server() -> Any:
    # kserve.model_server parses sys.argv when imported; our own flags must not reach it
    # (argparse would prefix-match --model to --model_name, or exit on an ambiguous one).
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        import kserve.model_server as ms
    finally:
        sys.argv = saved
    return ms


def _logging() -> None:
    # Our own handler: KServe's dictConfig (applied when its server is built) disables
    # loggers it does not name, so they are switched back on after it.
    root = logging.getLogger("spct")
    if not root.handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)
        root.propagate = False
    for name in ("spct", "spct.serving"):
        logging.getLogger(name).disabled = False


def _bind(ms: Any, host: str) -> None:
    # KServe's RESTServer hard-codes host="0.0.0.0" in its uvicorn.Config; the
    # subclass rewrites it before uvicorn reads it (the server holds the same Config).
    base = ms.RESTServer
    if getattr(base, "_spct_host", None) is not None:
        base = base.__bases__[0]

    class RESTServer(base):  # type: ignore[misc, valid-type]
        _spct_host = host

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.config.host = host

    ms.RESTServer = RESTServer


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(source: str, settings: ServerSettings | None = None, *, meta_rm: Any | None = None) -> None:
    """Load and warm up the GRM, then serve it until SIGTERM/SIGINT (graceful drain)."""
    ms = _import_kserve_server()
    settings = settings or ServerSettings()
    _logging()
    if not settings.api_tokens and not is_loopback(settings.host):
        log.warning("listening on %s without authentication: anyone who can reach the port can use the GRM; "
                    "set SPCT_API_TOKEN or --api-token-file", settings.host)
    _bind(ms, settings.host)
    model = GRMModel(source, settings, meta_rm=meta_rm)
    model.load()
    install(ms.app, model)
    server = ms.ModelServer(
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        enable_grpc=settings.enable_grpc,
        grace_period=settings.grace_period_s,
        enable_latency_logging=False,
    )
    _logging()
    log.info("serving %s on %s:%d (%s)", settings.name, settings.host, settings.http_port,
             "bearer-token authentication" if settings.api_tokens else "no authentication")
    server.start([model])
    model.stop()  # idempotent: KServe's stop() may already have unloaded it
