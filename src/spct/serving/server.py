"""Run the predictor in KServe's model server, with a request guard in front of it.

The guard is an ASGI middleware on KServe's FastAPI app. For the two judge
routes it enforces the body-size limit while reading, refuses content types
and CloudEvents the predictor does not speak, and runs the full request
validation, so every malformed body answers 4xx with ``{"error", "field"}``
before KServe's own decoding (which would answer 500 for some shapes and
FastAPI's 422 format for others). Valid bodies are replayed unchanged.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

from spct.serving import metrics
from spct.serving.predictor import GRMModel, ServerSettings, ServingError
from spct.serving.protocol import Limits, RequestError, loads, parse_v1, parse_v2

log = logging.getLogger("spct.serving")
_V1 = re.compile(r"^/v1/models/(?P<name>[^/]+):predict$")
_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/[^/]+)?/infer$")
_JSON_TYPES = ("application/json",)


def _reply(status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] | None = None) -> tuple[dict, dict]:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())] + (extra or [])
    return {"type": "http.response.start", "status": status, "headers": headers}, {"type": "http.response.body", "body": data}


class RequestGuard:
    """Validate judge requests before KServe decodes them; count answers per status."""

    def __init__(self, app: Any, model: GRMModel):
        self.app = app
        self.model = model

    @property
    def limits(self) -> Limits:
        return self.model.settings.limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        proto = "v1" if _V1.match(path) else "v2" if _V2.match(path) else None
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
        try:
            body = await self._check(scope, receive, proto)
        except RequestError as e:
            start, payload = _reply(e.status, e.body())
            await counting_send(start)
            await counting_send(payload)
        else:
            sent = False

            async def replay() -> dict:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, counting_send)

    async def _check(self, scope: dict, receive: Any, proto: str) -> bytes:
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
                raise RequestError("body", "the client disconnected before sending the body")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                raise RequestError("body", f"over the limit of {self.limits.max_body_bytes} bytes", 413)
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
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
    """Put the guard and the error handlers on KServe's FastAPI app (before it starts)."""
    from fastapi.exceptions import RequestValidationError

    app.add_middleware(RequestGuard, model=model)
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


def serve(source: str, settings: ServerSettings | None = None, *, meta_rm: Any | None = None) -> None:
    """Load and warm up the GRM, then serve it until SIGTERM/SIGINT (graceful drain)."""
    ms = _import_kserve_server()
    settings = settings or ServerSettings()
    _logging()
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
    log.info("serving %s on 0.0.0.0:%d", settings.name, settings.http_port)
    server.start([model])
    model.stop()  # idempotent: KServe's stop() may already have unloaded it
