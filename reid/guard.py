"""ASGI middleware that checks an upload form's shape before BentoML parses it.

BentoML reads the whole body and, when a file field holds text, fetches that text as a URL.
This guard refuses, with a JSON error: bodies over the byte cap (from ``Content-Length`` before
reading anything, else while reading), anything but ``multipart/form-data``, malformed forms,
missing, repeated or unknown fields, text where a file belongs and a file where text belongs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from reid.errors import BadForm, RequestError, TooLarge, UnsupportedMediaType

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class UploadGuard:
    def __init__(
        self,
        app: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        paths: tuple[str, ...],
        file_fields: tuple[str, ...],
        text_fields: tuple[str, ...],
        max_bytes: int,
    ) -> None:
        self.app = app
        self.paths = paths
        self.file_fields = file_fields
        self.text_fields = text_fields
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            boundary = self._boundary(scope)
            body = await self._read_body(receive)
            self._check_form(body, boundary)
        except RequestError as error:
            await _send_json(send, error.status, error.to_json())
            return
        await self.app(scope, _replay(body, receive), send)

    def _boundary(self, scope: Scope) -> bytes:
        headers = {key.decode("latin-1").lower(): value for key, value in scope["headers"]}
        media_type, params = parse_options_header(headers.get("content-type", b""))
        if media_type != b"multipart/form-data" or not params.get(b"boundary"):
            expected = ", ".join(self.file_fields + self.text_fields)
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
        allowed = self.file_fields + self.text_fields
        names = [name for name, _ in parts]
        for name, is_file in parts:
            if name not in allowed:
                raise BadForm(f"unknown field; expected {', '.join(allowed)}", field=name)
            if names.count(name) > 1:
                raise BadForm("given more than once", field=name)
            if name in self.file_fields and not is_file:
                raise BadForm("must be an uploaded file (with a filename), not text", field=name)
            if name in self.text_fields and is_file:
                raise BadForm("must be a text value, not a file", field=name)
        for name in self.file_fields:
            if name not in names:
                raise BadForm("field required: a JPEG or PNG file", field=name)


def _form_parts(body: bytes, boundary: bytes) -> list[tuple[str, bool]]:
    """``(field name, has a filename)`` of every part of a multipart body, in order."""
    parts: list[tuple[str, bool]] = []
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
        parts.append((params[b"name"].decode("utf-8", "replace"), b"filename" in params))
        disposition.clear()

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
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


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": int(status),
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
