"""ASGI middleware in front of the upload endpoints: access, load and the form's shape,
checked before BentoML parses anything.

In this order it refuses, with a JSON error: a missing or wrong API key when one is set (401),
more requests in flight than allowed (503 with Retry-After), anything but
``multipart/form-data`` (415), bodies over the byte cap (413; from ``Content-Length`` before
reading anything, else while reading), malformed forms, and missing, repeated or unknown
fields, text where a file belongs (BentoML would fetch it as a URL), a file where text
belongs, and text values their validators refuse (400).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from reid.errors import BadForm, RequestError, TooLarge, Unauthorized, Unavailable, UnsupportedMediaType

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RequestGuard:
    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        paths: tuple[str, ...],
        file_fields: tuple[str, ...],
        text_fields: dict[str, Callable[[str], object]],
        max_bytes: int,
        max_in_flight: int = 1_000_000,
        api_key: str | None = None,
        on_reject: Callable[[RequestError], None] = lambda error: None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.file_fields = file_fields
        self.text_fields = text_fields
        self.max_bytes = max_bytes
        self.max_in_flight = max_in_flight
        self.api_key = api_key.encode() if api_key else None
        self.in_flight = 0
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value for key, value in scope["headers"]}
        try:
            self._check_key(headers)
            if self.in_flight >= self.max_in_flight:
                raise Unavailable(f"busy: {self.in_flight} requests in flight, the limit; retry shortly")
        except RequestError as error:
            await self._refuse(send, error)
            return
        self.in_flight += 1
        try:
            try:
                boundary = self._boundary(headers)
                body = await self._read_body(receive)
                self._check_form(body, boundary)
            except RequestError as error:
                await self._refuse(send, error)
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, send: Send, error: RequestError) -> None:
        self.on_reject(error)
        await send_error(send, error)

    def _check_key(self, headers: dict[str, bytes]) -> None:
        if self.api_key is None:
            return
        given = headers.get("x-api-key", b"")
        scheme, _, token = headers.get("authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer":
            given = token.strip()
        # Constant time, so that response timing says nothing about the key.
        if not hmac.compare_digest(given, self.api_key):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")

    def _boundary(self, headers: dict[str, bytes]) -> bytes:
        media_type, params = parse_options_header(headers.get("content-type", b""))
        if media_type != b"multipart/form-data" or not params.get(b"boundary"):
            expected = ", ".join(self.file_fields + tuple(self.text_fields))
            raise UnsupportedMediaType(f"send a multipart/form-data body with the fields {expected}")
        length = headers.get("content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            raise self._too_large()
        return params[b"boundary"]

    def _too_large(self) -> TooLarge:
        return TooLarge(f"the request body is over the limit of {self.max_bytes} bytes")

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadForm("the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_form(self, body: bytes, boundary: bytes) -> None:
        parts = _form_parts(body, boundary)
        allowed = self.file_fields + tuple(self.text_fields)
        names = [part.name for part in parts]
        for part in parts:
            name = part.name
            if name not in allowed:
                raise BadForm(f"unknown field; expected {', '.join(allowed)}", field=name)
            if names.count(name) > 1:
                raise BadForm("given more than once", field=name)
            if name in self.file_fields and not part.is_file:
                raise BadForm("must be an uploaded file (with a filename), not text", field=name)
            if name in self.text_fields:
                if part.is_file:
                    raise BadForm("must be a text value, not a file", field=name)
                if len(part.text) > MAX_TEXT_BYTES:
                    raise BadForm(f"longer than {MAX_TEXT_BYTES} bytes", field=name)
                try:
                    self.text_fields[name](part.text.decode("utf-8", "replace"))
                except ValueError as error:
                    raise BadForm(str(error), field=name) from error
        for name in self.file_fields:
            if name not in names:
                raise BadForm("field required: a JPEG or PNG file", field=name)


MAX_TEXT_BYTES = 1024


@dataclass
class FormPart:
    name: str
    is_file: bool
    text: bytearray = field(default_factory=bytearray)  # a text part's value, up to MAX_TEXT_BYTES + 1


def optional_unit_interval(text: str) -> float | None:
    """A number in [0, 1], or ``null`` (what BentoML's client sends for "not given")."""
    if text.strip() == "null":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ValueError(f"must be a number from 0 to 1, not {text[:20]}")
    return value


def _form_parts(body: bytes, boundary: bytes) -> list[FormPart]:
    """The parts of a multipart body, in order: name, whether a file, and text values."""
    parts: list[FormPart] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    disposition: list[bytes] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            disposition.append(header["value"])
        header["field"], header["value"] = b"", b""

    def on_headers_finished() -> None:
        kind, params = parse_options_header(disposition[-1] if disposition else b"")
        if kind != b"form-data" or b"name" not in params:
            raise BadForm("a form part has no Content-Disposition name")
        parts.append(FormPart(params[b"name"].decode("utf-8", "replace"), b"filename" in params))
        disposition.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if not part.is_file and len(part.text) <= MAX_TEXT_BYTES:
            part.text += data[start : min(end, start + MAX_TEXT_BYTES + 1 - len(part.text))]

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise BadForm(f"malformed multipart body ({error})") from error
    if not parts and body.strip():
        raise BadForm("malformed multipart body (no parts found)")
    return parts


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_error(send: Send, error: RequestError) -> None:
    """Answer with the error's status, headers and JSON body."""
    body = json.dumps(error.to_json()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": int(error.status), "headers": headers})
    await send({"type": "http.response.body", "body": body})
