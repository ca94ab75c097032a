"""The ASGI types the front door's rooms share, and reading headers and replaying a body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from reid.errors import BadForm

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of a (lower-case) header, if given."""
    return next((value for key, value in headers if key == name), None)


def one_header(headers: Headers, name: bytes) -> bytes | None:
    """The value of a header given at most once (BadForm when repeated)."""
    values = [value for key, value in headers if key == name]
    if len(values) > 1:
        raise BadForm(f"give the {name.decode()} header once, not {len(values)} times")
    return values[0] if values else None


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already read ``body`` first, then what ``receive`` gives."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
