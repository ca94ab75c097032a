"""Calls to the model services, with their transport failures turned into a retryable 503."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TypeVar

import aiohttp
import httpx
from bentoml.exceptions import BentoMLException

from reid.errors import Unavailable

T = TypeVar("T")
R = TypeVar("R")


# A pooled keep-alive connection that the model service closed just as it was reused: the call
# never ran, so it is sent again. Connections go stale together after an idle spell (two in a
# row were seen after a burst), so up to STALE_TRIES sends, each on the pool's next connection.
STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, httpx.RemoteProtocolError)
STALE_TRIES = 4
TRANSPORT_ERRORS = (aiohttp.ClientError, httpx.HTTPError, OSError)


def guarded(call: Callable[[T], Awaitable[R]], service: str) -> Callable[[T], Awaitable[R]]:
    """Wrap a dependency call (detection and embedding are pure, so a retry is safe): a dead,
    restarting, overloaded or failing model service answers the client 503 with Retry-After,
    never 500 and never a hang."""

    async def wrapped(items: T) -> R:
        try:
            for _ in range(STALE_TRIES - 1):
                try:
                    return await call(items)
                except STALE_CONNECTION:
                    continue
            return await call(items)
        # BentoML's clients are aiohttp (between services) or httpx, depending on the path.
        except TRANSPORT_ERRORS as error:
            raise Unavailable(f"the {service} service is unavailable ({type(error).__name__}); retry") from error
        except BentoMLException as error:
            status = int(getattr(error, "error_code", HTTPStatus.INTERNAL_SERVER_ERROR))
            if status >= 500 or status == HTTPStatus.TOO_MANY_REQUESTS:
                raise Unavailable(f"the {service} service is unavailable ({status}); retry") from error
            raise

    return wrapped
