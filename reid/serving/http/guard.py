"""The entry service's outermost ASGI layer: :class:`RequestGuard` sends every request through
the front door's rooms (see :mod:`reid.serving.http`), then on to BentoML.

It answers unknown paths (404) and wrong methods (405) itself, so that nothing unknown reaches
BentoML's per-path metrics. Requests for the ``mounts`` (ASGI apps mounted with
``bentoml.asgi_app``: the gallery's management routes) need the API key, count against the
in-flight limit, and have their body read first, within the budget and a small cap (413); a
request for a mount's own path goes to its root (Starlette's Mount matches only below it). A
query parameter given twice is refused (400) everywhere; ``cached_paths`` (the API document)
are answered from their first 200; ``keyed_paths`` (``/metrics``, when asked) need the key.

An upload (a POST to a path with a form) is refused, with a JSON error, in this order: a
missing or wrong API key (401); a header the form reads given twice or refused by its check
(400); a body that is not one UTF-8 ``multipart/form-data`` (415, or 400), over the byte cap
(413) or too slow (408); a form its declaration refuses (400, or the file check's status); more
requests in flight than allowed, counted once their body is in (503 with Retry-After). Any other
failure of the checks is a 400, and a body's share of the memory budget is given back however
its request ends. What passes reaches BentoML as exactly what was checked (one normalised
Content-Type, the body as read) with the checked form on its request (:func:`checked_form`).
Every error response from inside, BentoML's own included, leaves in the same ``{"error",
"field"}`` shape; a 500 or a crash becomes a 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from http import HTTPStatus

from starlette.routing import compile_path

from reid.errors import BadForm, RequestError, Unavailable
from reid.serving.http.asgi import App, Message, Receive, Scope, Send, one_header, replay
from reid.serving.http.auth import check_api_key
from reid.serving.http.body import UploadLimits, multipart_boundary, normalised, read_body
from reid.serving.http.forms import CheckedForm, FormPart, UploadForm, check_form, with_checked_form
from reid.serving.http.responses import ResponseShaper, send_error
from reid.serving.http.routing import check_route, single_values
from reid.serving.memory import ByteBudget

MAX_MANAGED_BODY = 64 * 1024  # the largest body of a mounted app's request (a gallery edit is 8 kB at most)

logger = logging.getLogger("reid")


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
                check_api_key(scope["headers"], self.api_key)
            self._check_route(scope, form, mounted)
            single_values(scope)
            if mounted:
                self._check_in_flight()
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
        if form is None and not mounted:
            check_route(scope, {scope["method"]} if self.known_path(scope) else set())
        else:
            check_route(scope, self.methods(scope) | ({"POST"} if form else set()))

    def _check_in_flight(self) -> None:
        if self.in_flight >= self.max_in_flight:
            raise Unavailable(f"busy: {self.in_flight} requests in flight, the limit; retry shortly")

    async def _managed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A mounted app's request: its body read first (capped, from the budget), in flight."""
        held = [0]
        self.in_flight += 1
        self._observe()
        try:
            try:
                body = await read_body(receive, self.limits, self.bodies, held, MAX_MANAGED_BODY)
            except RequestError as error:
                await self._refuse(send, error)
                return
            await self._forward(scope, replay(body, receive), send)
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
                body, boundary, checked = await self._checked_upload(scope, receive, form, held)
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
                scope = with_checked_form(
                    {**scope, "headers": normalised(scope["headers"], boundary, len(body))}, checked
                )
                await self._forward(scope, replay(body, receive), send)
            finally:
                self.in_flight -= 1
        finally:
            self.bodies.release(held[0])
            self._observe()

    def _observe(self) -> None:
        self.on_load(self.bodies.total - self.bodies.free, self.in_flight)

    async def _checked_upload(
        self, scope: Scope, receive: Receive, form: UploadForm, held: list[int]
    ) -> tuple[bytes, bytes, CheckedForm]:
        """The body, its boundary and the form as checked; a RequestError for the first fault."""
        headers = scope["headers"]
        check_api_key(headers, self.api_key)
        single_values(scope)
        read_headers = {}
        for name, check in form.headers.items():
            value = one_header(headers, name)
            try:
                check(value)
            except ValueError as error:
                raise BadForm(str(error), field=name.decode()) from error
            if value is not None:
                read_headers[name] = value
        max_bytes = form.max_bytes or self.limits.max_bytes
        boundary = multipart_boundary(headers, form.names, max_bytes)
        body = await read_body(receive, self.limits, self.bodies, held, max_bytes)
        # Off the event loop: parsing and checking tens of megabytes takes a while.
        parts = await asyncio.to_thread(check_form, body, boundary, form)
        self._check_in_flight()
        return body, boundary, _checked(parts, read_headers)

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The inner app, its error responses reshaped and a crash answered with a 503."""
        shaper = ResponseShaper(send, self.on_reject)
        try:
            await self.app(scope, receive, shaper.send)
        except Exception:
            logger.exception("request failed inside the service")
            if shaper.started:
                raise
            await self._refuse(send, Unavailable("the service failed to answer; retry"))

    async def _refuse(self, send: Send, error: RequestError) -> None:
        self.on_reject(error)
        await send_error(send, error)


def _checked(parts: list[FormPart], headers: dict[bytes, bytes]) -> CheckedForm:
    values = {part.name: part.value for part in parts if not part.is_file}
    files = {part.name: part.data for part in parts if part.is_file}
    return CheckedForm(values=values, files=files, headers=headers)
