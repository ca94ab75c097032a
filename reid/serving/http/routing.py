"""Which requests have a route: paths the service knows (404 else), the methods each takes
(405 with ``Allow`` else), and query strings with each parameter once (400 else). The answers
come from the Starlette app BentoML builds, the routes of the apps it mounts included."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles

from reid.errors import BadForm, MethodNotAllowed, NotFound
from reid.serving.http.asgi import Scope


def route_methods(app: Any) -> Callable[[Scope], set[str]]:
    """The methods a Starlette app's routes take on a request's path, the routes of the apps it
    mounts included (not static files); empty when none has the path."""

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


def check_route(scope: Scope, allowed: set[str]) -> None:
    """NotFound when no route takes the path (``allowed`` is empty), MethodNotAllowed (naming
    what it takes) when none takes the request's method."""
    if not allowed:
        raise NotFound(f"no such path: {scope['path'][:100]}")
    if scope["method"] not in allowed:
        allow = ", ".join(sorted(allowed))
        raise MethodNotAllowed(f"{scope['path'][:100]} takes {allow}", allow=allow)


def single_values(scope: Scope) -> None:
    """BadForm when a query parameter is given more than once: a proxy reading the first value
    and the service reading the last would disagree."""
    names = [name for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BadForm("given more than once; give each query parameter once", field=repeated[0][:100])
