"""The one shape every refusal leaves the service in: ``{"error", "field"}`` with the error's
status and headers (:mod:`reid.errors`). :func:`error_response` builds it for Starlette and
FastAPI handlers, :func:`send_error` for the ASGI layer; :class:`ResponseShaper` rewrites the
error responses of BentoML and Starlette into it."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse

from reid.errors import BadForm, RequestError, TimedOut, Unavailable
from reid.serving.http.asgi import Message, Send

# Error bodies from inside are reshaped; one longer than this is replaced unread.
MAX_ERROR_BODY = 64 * 1024


def error_response(error: RequestError) -> JSONResponse:
    """The refusal as a response for a route's handler."""
    return JSONResponse(error.to_json(), status_code=int(error.status), headers=error.headers())


async def send_error(send: Send, error: RequestError) -> None:
    """Answer an ASGI request with the refusal."""
    response = error_response(error)
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class ResponseShaper:
    """Passes responses on, except error responses not already ``{"error", "field"}``, which it
    rewrites: BentoML's validation errors keep their status, 429 and 5xx become 503 (504 stays),
    both with Retry-After."""

    def __init__(self, send: Send, on_reject: Callable[[RequestError], None]) -> None:
        self._send = send
        self._on_reject = on_reject
        self.started = False
        self._start: Message | None = None
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        """The inner app's ``send``."""
        if message["type"] == "http.response.start":
            self.started = True
            if message["status"] < 400:
                await self._send(message)
            else:
                self._start = message
            return
        if self._start is None or message["type"] != "http.response.body":
            await self._send(message)
            return
        if len(self._body) <= MAX_ERROR_BODY:
            self._body += message.get("body", b"")
        if not message.get("more_body", False):
            await self._send_shaped()

    async def _send_shaped(self) -> None:
        assert self._start is not None
        status = self._start["status"]
        payload = _json(bytes(self._body))
        if isinstance(payload, dict) and isinstance(payload.get("error"), str) and "field" in payload:
            headers = list(self._start["headers"])
            if status in (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.GATEWAY_TIMEOUT):
                headers = [h for h in headers if h[0].lower() != b"retry-after"] + [(b"retry-after", b"1")]
            await self._send({**self._start, "headers": headers})
            await self._send({"type": "http.response.body", "body": bytes(self._body)})
            return
        error = translated(status, payload)
        self._on_reject(error)
        await send_error(self._send, error)


def translated(status: int, payload: Any) -> RequestError:
    """BentoML's or Starlette's error response (its status and JSON body) as one of ours."""
    if status == HTTPStatus.GATEWAY_TIMEOUT:
        return TimedOut("no answer in time; retry")
    if status == HTTPStatus.TOO_MANY_REQUESTS or status >= 500:
        return Unavailable("the service is busy or failed to answer; retry")
    text = payload.get("error") if isinstance(payload, dict) else None
    detail = payload.get("detail") if isinstance(payload, dict) else None
    location = detail[0].get("loc") if isinstance(detail, list) and detail and isinstance(detail[0], dict) else None
    error = BadForm(
        text if isinstance(text, str) else HTTPStatus(status).phrase, field=str(location[0]) if location else None
    )
    error.status = HTTPStatus(status)
    return error


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
