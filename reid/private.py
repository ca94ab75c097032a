"""Every use of another library's private API, in one place, each with a test
(``tests/unit/test_private.py``) that fails with a clear message when an upgrade moves it.

| what | used for |
|---|---|
| ``bentoml._internal.context.trace_context.request_id`` | the request id in our JSON logs |
| ``bentoml.Service.to_asgi`` (replaced on the class) | the guard outside BentoML's own middleware |
| ``_bentoml_impl.worker.service`` (run as a module) | one service per pod (``reid.serving.podserve``) |
| ``uvicorn.config.HTTP_PROTOCOLS``, ``uvicorn.protocols.http.h11_impl.H11Protocol`` | a deadline for request heads |
| ``torchreid.reid.models.__model_factory`` | the architectures a ``.pth`` may name |
| ``bentoml._internal.marshal.dispatcher.Optimizer`` (``trigger_refresh``, ``wait``) | a lone request's batch wait |
| ``bentoml._internal.context.request_tempdir_pool`` (follows ``tempfile.tempdir``) | uploads in a private folder |
| ``_bentoml_sdk.service.openapi._get_api_routes``, ``Service.openapi_spec`` | APIs beside mounts in the docs |
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

# BentoML's worker for one service, run as ``python -m`` by reid.serving.podserve.
BENTOML_WORKER_MODULE = "_bentoml_impl.worker.service"


def request_id() -> int | None:
    """The id BentoML gives the request being served (None outside a request)."""
    from bentoml._internal.context import trace_context

    return trace_context.request_id


def serve_entry_behind(service: Any, wrap: Callable[[Any, Any], Any]) -> None:
    """Make ``wrap(app, service)`` the outermost ASGI layer of ``service`` when it is served as
    the entry.

    ``service.add_asgi_middleware`` puts a middleware inside BentoML's own metrics, timeout and
    concurrency middleware: they would count unknown paths as metric series, start the request
    timeout while a body still trickles in, and answer 429 or 504 in their own shape. BentoML's
    worker builds the app with ``Service.to_asgi(is_main=...)``; this wraps what it returns.
    """
    service_class = type(service)
    build = service_class.to_asgi

    def to_asgi(self, is_main: bool = True):
        app = build(self, is_main)
        return wrap(app, self) if is_main and self.name == service.name else app

    service_class.to_asgi = to_asgi


def document_apis_beside_mounts(service: Any) -> None:
    """Keep an API's operation in ``/docs.json`` where a mounted FastAPI app has the same path.

    BentoML builds the document as ``{**api_paths, **mounted_app_paths}``: the gallery's mounted
    ``GET /gallery/persons`` would hide the ``POST /gallery/persons`` API that enrols. The
    document is built as BentoML builds it, then each API's operation is put back beside the
    mounted app's operations on its path.
    """
    import attr
    from _bentoml_sdk.service.openapi import _get_api_routes

    service_class = type(service)
    build = service_class.openapi_spec.fget

    def openapi_spec(self):
        spec = build(self)
        for path, api in _get_api_routes(self).items():
            shown = spec.paths.get(path)
            if shown is None:
                continue
            missing = {name: getattr(api, name) for name in OPERATIONS if getattr(shown, name) is None}
            spec.paths[path] = attr.evolve(shown, **{k: v for k, v in missing.items() if v is not None})
        return spec

    service_class.openapi_spec = property(openapi_spec)


OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def lead_the_document_with(service: Any, text: str) -> None:
    """Put ``text`` (Markdown) first in the API document's description, which BentoML's page at
    ``/`` shows on top: BentoML builds the description from the Bento's README and offers no
    setting for it."""
    import attr

    service_class = type(service)
    build = service_class.openapi_spec.fget

    def openapi_spec(self):
        spec = build(self)
        return attr.evolve(spec, info=attr.evolve(spec.info, description=f"{text}\n\n{spec.info.description or ''}"))

    service_class.openapi_spec = property(openapi_spec)


def bound_batch_wait(seconds: float) -> None:
    """Let a request wait at most ``seconds`` for others to join its adaptive batch.

    BentoML's batcher holds a lone request while it expects more to come, for the average time
    the first request of its last 50 batches sat in the queue. Under load that average is the
    time spent waiting for the previous batch to finish, seconds; it is recomputed only when a
    batch completes, at most every 5 s, and is fed by the waits it causes: after a burst, each
    lone request was held for seconds more, and it took minutes to wear off (issue 16). Under
    load, batches still fill while the previous one runs.
    """
    from bentoml._internal.marshal.dispatcher import Optimizer

    refresh = getattr(Optimizer.trigger_refresh, "unbounded", Optimizer.trigger_refresh)

    def trigger_refresh(self) -> None:
        refresh(self)
        self.wait = min(self.wait, seconds)

    trigger_refresh.unbounded = refresh  # type: ignore[attr-defined]
    Optimizer.trigger_refresh = trigger_refresh  # type: ignore[method-assign]


def torchreid_architectures() -> list[str]:
    """Every architecture name torchreid's ``build_model`` takes."""
    from torchreid.reid.models import __model_factory

    return list(__model_factory)


def limit_header_time(seconds: float) -> None:
    """Close HTTP connections that have not sent a whole request head within ``seconds`` of
    opening or of their last response (slowloris): uvicorn times out idle keep-alive connections
    only after a response, and never a request head that trickles in. Applies to the uvicorn
    servers this process starts from now on (BentoML's worker starts one after loading the
    service)."""
    import uvicorn.config

    _header_deadline_protocol().seconds = seconds
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:HeaderDeadlineProtocol"
    uvicorn.config.HTTP_PROTOCOLS["h11"] = f"{__name__}:HeaderDeadlineProtocol"


@functools.cache
def _header_deadline_protocol():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        """uvicorn's h11 protocol with a deadline for each request head."""

        seconds = 10.0
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a whole head arrived: the request is being served

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(self.seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


def __getattr__(name: str):
    # uvicorn imports the protocol by name; build it only then, so that importing this module
    # does not import uvicorn.
    if name == "HeaderDeadlineProtocol":
        return _header_deadline_protocol()
    raise AttributeError(name)
