"""The entry service's outermost ASGI layer: every request meets it before BentoML does.

It answers unknown paths (404) and wrong methods (405) itself, so that nothing unknown reaches
BentoML's per-path metrics. Requests for the ``mounts`` (ASGI apps mounted with
``bentoml.asgi_app``: the gallery's management routes) need the API key, count against the
in-flight limit, and have their body read first, within the budget and a small cap (413); a
request for a mount's own path goes to its root (Starlette's Mount matches only below it). A
query parameter given twice is refused (400) everywhere; ``cached_paths`` (the API document)
are answered from their first 200; ``keyed_paths`` (``/metrics``, when asked) need the key.
For the upload endpoints it refuses,
with a JSON error, in this order: a missing or wrong API key (401); a read header given twice
or refused by its check (400); anything but one ``multipart/form-data`` Content-Type in UTF-8
with a boundary of at most 70 characters (415, or 400 for two of them or a longer boundary);
bodies over the byte cap (413; from ``Content-Length`` before reading, else while reading);
bodies that arrive too slowly (408); malformed forms (no closing boundary, odd file names) and
missing, repeated or unknown fields, text where a file belongs (BentoML would fetch it as a
URL), a file where text belongs, text that is not UTF-8 or that the validators refuse (400),
and files the form's check refuses (its status); more requests in flight than allowed, counted
once their body is in (503 with Retry-After). Any other failure of the checks is a 400, and a
body's share of the memory budget is given back however its request ends. What passes reaches
BentoML as exactly what was checked: one normalised Content-Type, the body as read. Every
error response from inside, BentoML's own included, leaves in the same ``{"error", "field"}``
shape; a 500 or a crash becomes a 503.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.routing import BaseRoute, Match, compile_path

from reid.errors import (
    BadForm,
    MethodNotAllowed,
    NotFound,
    RequestError,
    TimedOut,
    TooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    UploadTooSlow,
)
from reid.serving.memory import ByteBudget

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_TEXT_BYTES = 8192  # the largest text field: 4 kB of gallery metadata, escaped
MAX_MANAGED_BODY = 64 * 1024  # the largest body of a mounted app's request (a gallery edit is 8 kB at most)
# The text fields of the request being answered, as the guard's validators read them: set by the
# guard, read by endpoints that need more than BentoML's reading (a request runs in one context).
FORM_VALUES: ContextVar[Mapping[str, object]] = ContextVar("reid_form_values", default=MappingProxyType({}))
# The files of the request being answered, by field (the last where one repeats), as the guard
# read them: for upload routes of mounted apps, which BentoML does not read for them.
FORM_FILES: ContextVar[Mapping[str, bytearray]] = ContextVar("reid_form_files", default=MappingProxyType({}))
# The request headers an upload form reads (UploadForm.headers), as the guard checked them.
REQUEST_HEADERS: ContextVar[Mapping[bytes, bytes]] = ContextVar("reid_request_headers", default=MappingProxyType({}))
# File names end up in BentoML's temporary file names: keep them well inside a file system's 255.
MAX_FILENAME_BYTES = 128
MAX_BOUNDARY_BYTES = 70  # RFC 2046's limit; the multipart parser raises past 256
# A body gets this long before the minimum upload rate applies.
UPLOAD_GRACE_S = 1.0
# Error bodies from inside are reshaped; one longer than this is replaced unread.
MAX_ERROR_BODY = 64 * 1024
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

logger = logging.getLogger("reid")


@dataclass(frozen=True)
class UploadForm:
    """The fields of one upload endpoint: files, text values with their validators, and a check
    of each file's bytes (``check_file(field, data)`` raises a RequestError to refuse it)."""

    file_fields: tuple[str, ...]
    text_fields: dict[str, Callable[[str], object]] = field(default_factory=dict)
    check_file: Callable[[str, bytes], object] | None = None
    repeated: dict[str, tuple[int, int]] = field(default_factory=dict)  # file field -> (fewest, most) files
    max_bytes: int | None = None  # this endpoint's body cap; default: the guard's
    # Request headers the endpoint reads (lower case), each with its check of the value (None: not given).
    headers: dict[bytes, Callable[[bytes | None], object]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Every field the form takes."""
        return self.file_fields + tuple(self.text_fields)

    def counts(self, name: str) -> tuple[int, int]:
        """How many times a file field must be given: (fewest, most)."""
        return self.repeated.get(name, (1, 1))


@dataclass(frozen=True)
class UploadLimits:
    """How much a body may be, and how fast it must come."""

    max_bytes: int  # a whole body
    timeout_s: float  # a whole body must arrive within this
    min_rate: float  # bytes per second, after UPLOAD_GRACE_S
    memory: int  # bytes of bodies held at once, all requests together


class RequestGuard:
    """The outermost ASGI layer of the entry service (see the module's text)."""

    def __init__(
        self,
        app: App,
        *,
        forms: dict[str, UploadForm],
        limits: UploadLimits,
        max_in_flight: int = 1_000_000,
        api_key: str | None = None,
        known_path: Callable[[Scope], bool] = lambda scope: True,
        methods: Callable[[Scope], set[str]] = lambda scope: set(),
        on_reject: Callable[[RequestError], None] = lambda error: None,
        on_load: Callable[[int, int], None] = lambda bytes_held, in_flight: None,
        mounts: frozenset[str] = frozenset(),
        keyed_paths: frozenset[str] = frozenset(),
        cached_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.forms = {path: form for path, form in forms.items() if "{" not in path}
        # Forms of paths with parameters ("/gallery/persons/{person_id}/views"), as Starlette matches them.
        self.templated_forms = [(compile_path(path)[0], form) for path, form in forms.items() if "{" in path]
        self.mounts = mounts
        self.limits = limits
        self.max_in_flight = max_in_flight
        self.api_key = api_key.encode() if api_key else None
        self.known_path = known_path
        self.methods = methods  # the methods the app's routes take on a request's path
        self.on_reject = on_reject
        self.on_load = on_load  # told (body bytes held, requests in flight) after each request
        self.keyed_paths = keyed_paths  # paths besides the uploads and mounts that need the key
        self.cached_paths = cached_paths  # GET paths whose answer never changes while the process lives
        self._cache: dict[str, list[Message]] = {}
        self.in_flight = 0
        self.bodies = ByteBudget(limits.memory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection: refuse it, pass it through, or check an upload first."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.mounts:
            raw_path = scope.get("raw_path") or scope["path"].encode()
            scope = {**scope, "path": scope["path"] + "/", "raw_path": raw_path + b"/"}
        form = self._form_of(scope["path"])
        if form is not None and scope["method"] == "POST":
            await self._upload(scope, receive, send, form)
            return
        mounted = scope["path"].startswith(tuple(f"{mount}/" for mount in self.mounts))
        try:
            if mounted or scope["path"] in self.keyed_paths:
                self._check_key(scope["headers"])
            self._check_route(scope, form, mounted)
            single_values(scope)
            if mounted and self.in_flight >= self.max_in_flight:
                raise Unavailable(f"busy: {self.in_flight} requests in flight, the limit; retry shortly")
        except RequestError as error:
            await self._refuse(send, error)
            return
        if mounted:
            await self._managed(scope, receive, send)
        else:
            await self._forward_cached(scope, receive, send)

    def _form_of(self, path: str) -> UploadForm | None:
        """The upload form of a path, if it takes one."""
        form = self.forms.get(path)
        if form is None:
            form = next((form for pattern, form in self.templated_forms if pattern.match(path)), None)
        return form

    def _check_route(self, scope: Scope, form: UploadForm | None, mounted: bool) -> None:
        """NotFound or MethodNotAllowed (with what the path takes) for what no route answers."""
        if form is None and not mounted:
            if not self.known_path(scope):
                raise NotFound(f"no such path: {scope['path'][:100]}")
            return
        allowed = self.methods(scope) | ({"POST"} if form else set())
        if not allowed:
            raise NotFound(f"no such path: {scope['path'][:100]}")
        if scope["method"] not in allowed:
            allow = ", ".join(sorted(allowed))
            raise MethodNotAllowed(f"{scope['path'][:100]} takes {allow}", allow=allow)

    async def _managed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A mounted app's request: its body read first (capped, from the budget), in flight."""
        held = [0]
        self.in_flight += 1
        self._observe()
        try:
            try:
                body = await self._read_body(receive, held, MAX_MANAGED_BODY)
            except RequestError as error:
                await self._refuse(send, error)
                return
            await self._forward(scope, _replay(body, receive), send)
        finally:
            self.in_flight -= 1
            self.bodies.release(held[0])
            self._observe()

    async def _forward_cached(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on; a GET of a cached path is answered from its first 200."""
        path = scope["path"]
        if scope["method"] != "GET" or path not in self.cached_paths:
            await self._forward(scope, receive, send)
            return
        if path not in self._cache:
            kept: list[Message] = []

            async def keep(message: Message) -> None:
                kept.append(message)
                await send(message)

            await self._forward(scope, receive, keep)
            if kept and kept[0]["type"] == "http.response.start" and kept[0]["status"] == HTTPStatus.OK:
                self._cache[path] = kept
            return
        for message in self._cache[path]:
            await send(message)

    async def _upload(self, scope: Scope, receive: Receive, send: Send, form: UploadForm) -> None:
        held = [0]  # bytes of the body budget this request holds, given back whatever happens
        try:
            try:
                body, boundary, parts = await self._checked_upload(scope, receive, form, held)
            except RequestError as error:
                await self._refuse(send, error)
                return
            except Exception:
                # A gap in the checks is a refused request, not a 500 that keeps its budget.
                logger.exception("an upload's checks failed")
                await self._refuse(send, BadForm("the request could not be read"))
                return
            self.in_flight += 1
            self._observe()
            try:
                # The text fields as the validators read them, for endpoints that need more than
                # BentoML's reading (it JSON-decodes each value that parses: a label "1e3" is 1000.0).
                FORM_VALUES.set({part.name: part.value for part in parts if not part.is_file})
                FORM_FILES.set({part.name: part.data for part in parts if part.is_file})
                headers = _normalised(scope["headers"], boundary, len(body))
                await self._forward({**scope, "headers": headers}, _replay(body, receive), send)
            finally:
                self.in_flight -= 1
        finally:
            self.bodies.release(held[0])
            self._observe()

    def _observe(self) -> None:
        self.on_load(self.bodies.total - self.bodies.free, self.in_flight)

    async def _checked_upload(
        self, scope: Scope, receive: Receive, form: UploadForm, held: list[int]
    ) -> tuple[bytes, bytes, list[FormPart]]:
        """The body, its boundary and its checked parts; a RequestError for the first fault."""
        headers = scope["headers"]
        self._check_key(headers)
        single_values(scope)
        REQUEST_HEADERS.set({key: value for key, value in headers if key in form.headers})
        for name, check in form.headers.items():
            try:
                check(_one_header(headers, name))
            except ValueError as error:
                raise BadForm(str(error), field=name.decode()) from error
        max_bytes = form.max_bytes or self.limits.max_bytes
        boundary = self._boundary(headers, form, max_bytes)
        body = await self._read_body(receive, held, max_bytes)
        # Off the event loop: parsing and checking tens of megabytes takes a while.
        parts = await asyncio.to_thread(check_form, body, boundary, form)
        if self.in_flight >= self.max_in_flight:
            raise Unavailable(f"busy: {self.in_flight} requests in flight, the limit; retry shortly")
        return body, boundary, parts

    async def _forward(self, scope: Scope, receive: Receive, send: Send, app: App | None = None) -> None:
        """The inner app (or ``app``), its error responses reshaped and a crash answered with a 503."""
        shaper = _ResponseShaper(send, self.on_reject)
        try:
            await (app or self.app)(scope, receive, shaper.send)
        except Exception:
            logger.exception("request failed inside the service")
            if shaper.started:
                raise
            await self._refuse(send, Unavailable("the service failed to answer; retry"))

    async def _refuse(self, send: Send, error: RequestError) -> None:
        self.on_reject(error)
        await send_error(send, error)

    def _check_key(self, headers: list[tuple[bytes, bytes]]) -> None:
        if self.api_key is None:
            return
        given = _header(headers, b"x-api-key") or b""
        scheme, _, token = (_header(headers, b"authorization") or b"").partition(b" ")
        if scheme.lower() == b"bearer":
            given = token.strip()
        # Constant time, so that response timing says nothing about the key.
        if not hmac.compare_digest(given, self.api_key):
            raise Unauthorized("missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")

    def _boundary(self, headers: list[tuple[bytes, bytes]], form: UploadForm, max_bytes: int) -> bytes:
        """The boundary of the one multipart/form-data Content-Type, after the byte cap on a
        declared Content-Length."""
        content_types = [value for key, value in headers if key == b"content-type"]
        if len(content_types) > 1:
            raise BadForm("give one Content-Type header, not several")
        media_type, params = parse_options_header(content_types[0] if content_types else b"")
        if media_type != b"multipart/form-data" or not params.get(b"boundary"):
            raise UnsupportedMediaType(f"send a multipart/form-data body with the fields {', '.join(form.names)}")
        if len(params[b"boundary"]) > MAX_BOUNDARY_BYTES:
            raise BadForm(f"the multipart boundary is over {MAX_BOUNDARY_BYTES} characters (RFC 2046)")
        if params.get(b"charset", b"utf-8").lower() not in (b"utf-8", b"us-ascii"):
            raise UnsupportedMediaType("send the form in UTF-8 (no other charset)")
        lengths = {value for key, value in headers if key == b"content-length"}
        if len(lengths) > 1:
            raise BadForm("give one Content-Length header, not several")
        length = next(iter(lengths), b"")
        if length.isdigit() and int(length) > max_bytes:
            raise _too_large(max_bytes)
        return params[b"boundary"]

    async def _read_body(self, receive: Receive, held: list[int], max_bytes: int) -> bytes:
        """The whole body, within the deadline and above the minimum rate (else UploadTooSlow),
        its bytes reserved from the body budget as they come, twice: the handler reads the
        files back from BentoML's copies (adds to ``held[0]``; 503 when the budget is spent)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks: list[bytes] = []
        size = 0
        while True:
            elapsed = loop.time() - started
            # Time left before the deadline, and before the minimum rate is missed.
            wait = min(self.limits.timeout_s, UPLOAD_GRACE_S + size / self.limits.min_rate) - elapsed
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
            except TimeoutError:
                raise UploadTooSlow(
                    f"the body arrived too slowly: {size} bytes in {elapsed:.1f} s (it must arrive within"
                    f" {self.limits.timeout_s:g} s, at {self.limits.min_rate:g} bytes/s at least)"
                ) from None
            if message["type"] == "http.disconnect":
                raise BadForm("the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            if not self.bodies.try_reserve(2 * len(chunk)):
                raise Unavailable("busy: too many uploads held at once; retry shortly")
            held[0] += 2 * len(chunk)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _too_large(max_bytes: int) -> TooLarge:
    return TooLarge(f"the request body is over the limit of {max_bytes} bytes")


def route_methods(app: Any) -> Callable[[Scope], set[str]]:
    """The methods a Starlette app's routes take on a request's path, the routes of the apps it
    mounts included (not static files); empty when none has the path."""
    from starlette.routing import Mount

    def methods(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
        found: set[str] = set()
        for route in routes:
            match, child = route.matches(scope)
            if match == Match.NONE:
                continue
            inner = getattr(route.app, "routes", None) if isinstance(route, Mount) else None
            if inner is not None:
                found |= methods(inner, {**scope, **child})
            else:
                found |= set(getattr(route, "methods", None) or ())
        return found

    routes = getattr(app, "routes", None)
    return lambda scope: set() if routes is None else methods(routes, scope)


def known_route(app: Any) -> Callable[[Scope], bool]:
    """Whether a request is for one of a Starlette app's routes (any method) or a file its
    static mounts hold; an app without routes knows every path."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    routes = getattr(app, "routes", None)
    if routes is None:
        return lambda scope: True

    def known(scope: Scope) -> bool:
        for route in routes:
            match, _ = route.matches(scope)
            if match == Match.NONE:
                continue
            if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
                try:
                    _, found = route.app.lookup_path(scope["path"][len(route.path) :].lstrip("/"))
                except (OSError, ValueError):  # names the file system refuses: a NUL, too long
                    return False
                return found is not None
            return True
        return False

    return known


def single_values(scope: Scope) -> None:
    """BadForm when a query parameter is given more than once: a proxy reading the first value
    and the service reading the last would disagree."""
    names = [name for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BadForm("given more than once; give each query parameter once", field=repeated[0][:100])


def _one_header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of a header given at most once (BadForm when repeated)."""
    values = [value for key, value in headers if key == name]
    if len(values) > 1:
        raise BadForm(f"give the {name.decode()} header once, not {len(values)} times")
    return values[0] if values else None


def optional_unit_interval(text: str) -> float | None:
    """A number in [0, 1] written in ASCII, or ``null`` (what BentoML's client sends for "not given")."""
    if text.strip() == "null":
        return None
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError("must be a number from 0 to 1")
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a number from 0 to 1, not {text[:20]}")
    return value


@dataclass
class FormPart:
    """One part of a multipart body as the guard saw it."""

    name: str
    filename: bytes | None
    data: bytearray = field(default_factory=bytearray)  # a file's bytes; a text value's, up to MAX_TEXT_BYTES + 1
    value: object = None  # a text value as its validator read it

    @property
    def is_file(self) -> bool:
        """Whether the part came with a file name."""
        return self.filename is not None


def check_form(body: bytes, boundary: bytes, form: UploadForm) -> list[FormPart]:
    """The parts of a multipart body, checked against ``form``; BadForm naming the field at fault."""
    parts = _form_parts(body, boundary)
    names = [part.name for part in parts]
    for part in parts:
        name = part.name
        if name not in form.names:
            raise BadForm(f"unknown field; expected {', '.join(form.names)}", field=name)
        if names.count(name) > form.counts(name)[1]:
            most = form.counts(name)[1]
            raise BadForm("given more than once" if most == 1 else f"give at most {most} files", field=name)
        if name in form.file_fields:
            if not part.is_file:
                raise BadForm("must be an uploaded file (with a filename), not text", field=name)
            if len(part.filename or b"") > MAX_FILENAME_BYTES or _CONTROL.search(part.filename or b""):
                raise BadForm(f"the file name must be at most {MAX_FILENAME_BYTES} bytes of text", field=name)
        if name in form.text_fields:
            if part.is_file:
                raise BadForm("must be a text value, not a file", field=name)
            if len(part.data) > MAX_TEXT_BYTES:
                raise BadForm(f"longer than {MAX_TEXT_BYTES} bytes", field=name)
            try:
                part.value = form.text_fields[name](part.data.decode("utf-8"))
            except UnicodeDecodeError:
                raise BadForm("must be UTF-8 text", field=name) from None
            except RecursionError:
                raise BadForm("nested too deeply", field=name) from None
            except ValueError as error:
                raise BadForm(str(error), field=name) from error
    for name in form.file_fields:
        fewest = form.counts(name)[0]
        if names.count(name) < fewest:
            wanted = "a JPEG or PNG file" if fewest == 1 else f"at least {fewest} JPEG or PNG files"
            raise BadForm(f"field required: {wanted}", field=name)
    if form.check_file is not None:
        files = [part for part in parts if part.name in form.file_fields]
        for part in files:
            form.check_file(_part_label(part, files, form), bytes(part.data))
    return parts


def _part_label(part: FormPart, files: list[FormPart], form: UploadForm) -> str:
    """How an error names a file: its field, with its place among the field's files where the
    field is repeated (``images[2]``)."""
    if part.name not in form.repeated:
        return part.name
    same = [other for other in files if other.name == part.name]
    return f"{part.name}[{next(i for i, other in enumerate(same) if other is part)}]"


def _form_parts(body: bytes, boundary: bytes) -> list[FormPart]:
    """The parts of a multipart body, in order: name, file name, and text values."""
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
        name = params.get(b"name")
        if kind != b"form-data" or name is None:
            raise BadForm("a form part has no Content-Disposition name")
        if _CONTROL.search(name):
            raise BadForm("a form part's name holds control characters")
        parts.append(FormPart(name.decode("utf-8", "replace"), params.get(b"filename")))
        disposition.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if part.is_file:
            part.data += data[start:end]
        elif len(part.data) <= MAX_TEXT_BYTES:
            part.data += data[start : min(end, start + MAX_TEXT_BYTES + 1 - len(part.data))]

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
    if parts and parser.state != MultipartState.END:
        raise BadForm("malformed multipart body (no closing boundary: cut short?)")
    return parts


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


def _normalised(headers: list[tuple[bytes, bytes]], boundary: bytes, length: int) -> list[tuple[bytes, bytes]]:
    """The headers BentoML gets: one plain multipart Content-Type and the body's real length."""
    replaced = (b"content-type", b"content-length", b"transfer-encoding")
    kept = [(key, value) for key, value in headers if key not in replaced]
    quoted = b'"' + boundary.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return kept + [(b"content-type", b"multipart/form-data; boundary=" + quoted), (b"content-length", b"%d" % length)]


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _ResponseShaper:
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
        error = _translated(status, payload)
        self._on_reject(error)
        await send_error(self._send, error)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _translated(status: int, payload: Any) -> RequestError:
    """BentoML's or Starlette's error response as one of ours."""
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


async def send_error(send: Send, error: RequestError) -> None:
    """Answer with the error's status, headers and JSON body."""
    body = json.dumps(error.to_json()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
    await send({"type": "http.response.start", "status": int(error.status), "headers": headers})
    await send({"type": "http.response.body", "body": body})
