"""Bearer-token authentication for every judging and generation route.

Tokens come from ``$SPCT_API_TOKEN`` (the chart fills it from a Secret), a
``--api-token`` flag, or a ``--api-token-file`` (one token per line, so a new
token can be added before the old one is removed). Missing or malformed
``Authorization`` answers 401 with ``WWW-Authenticate: Bearer``; a token that
is not one of the accepted ones answers 403. Tokens are compared in constant
time and never logged.

Probes and scrapes stay open: Kubernetes' httpGet probes and Prometheus cannot
read a Secret into a header, and these paths reveal only liveness, readiness
and counters, never a verdict or request text.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ENV_VAR = "SPCT_API_TOKEN"
_OPEN = re.compile(r"^(/|/metrics|/v2/health/(live|ready)|/v2/models/[^/]+(/versions/[^/]+)?/ready|/v1/models/[^/:]+)$")


def load_tokens(token: str | None = None, token_file: Path | None = None, env: dict[str, str] | None = None) -> tuple[str, ...]:
    """Every accepted token: the flag, the file's non-empty lines, ``$SPCT_API_TOKEN``."""
    env = os.environ if env is None else env
    found: list[str] = []
    for t in (token, env.get(ENV_VAR)):
        if t and t.strip():
            found.append(t.strip())
    if token_file is not None:
        try:
            lines = Path(token_file).read_text().splitlines()
        except OSError as e:
            raise ValueError(f"--api-token-file {token_file}: cannot read it ({e.strerror})") from None
        found += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not found:
            raise ValueError(f"--api-token-file {token_file}: holds no token")
    for t in found:
        if len(t) < 16 or any(c.isspace() for c in t):
            raise ValueError("an API token must be at least 16 characters without spaces")
    return tuple(dict.fromkeys(found))


def is_open(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and bool(_OPEN.match(path))


def check(header: str | None, tokens: Iterable[str]) -> tuple[int, str] | None:
    """None if the ``Authorization`` header carries an accepted token, else (status, message)."""
    if not header:
        return 401, "missing; send 'Authorization: Bearer <token>'"
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return 401, "must be 'Bearer <token>'"
    given = value.strip().encode()
    ok = False
    for t in tokens:  # no early exit: the time taken does not depend on which token matched
        ok |= hmac.compare_digest(given, t.encode())
    return None if ok else (403, "the token is not accepted")


class BearerAuth:
    """ASGI middleware in front of the whole app: refuse before anything else reads the request."""

    def __init__(self, app: Any, tokens: tuple[str, ...], refuse: Any):
        self.app = app
        self.tokens = tokens
        self.refuse = refuse  # async (scope, receive, send, status, field, message, extra_headers)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.tokens or is_open(scope["method"], scope["path"]):
            return await self.app(scope, receive, send)
        header = None
        for k, v in scope.get("headers", []):
            if k.lower() == b"authorization":
                header = v.decode("latin-1")
                break
        verdict = check(header, self.tokens)
        if verdict is None:
            return await self.app(scope, receive, send)
        status, message = verdict
        extra = [(b"www-authenticate", b'Bearer realm="spct"' + (b', error="invalid_token"' if status == 403 else b""))]
        await self.refuse(scope, receive, send, status, "authorization", message, extra)
