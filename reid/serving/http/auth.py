"""The API key: when one is set, a request must carry it, as ``Authorization: Bearer <key>`` or
``X-API-Key: <key>`` (401 else)."""

from __future__ import annotations

import hmac

from reid.errors import Unauthorized
from reid.serving.http.asgi import Headers, header


def check_api_key(headers: Headers, key: bytes | None) -> None:
    """Unauthorized unless ``headers`` carry ``key`` (no key: every request passes)."""
    if key is None:
        return
    given = header(headers, b"x-api-key") or b""
    scheme, _, token = (header(headers, b"authorization") or b"").partition(b" ")
    if scheme.lower() == b"bearer":
        given = token.strip()
    # Constant time, so that response timing says nothing about the key.
    if not hmac.compare_digest(given, key):
        raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
