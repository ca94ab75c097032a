"""Calls to the model services: stale pooled connections are sent again, up to a bound; what
still fails becomes a 503 the client may retry."""

import asyncio

import aiohttp
import pytest

from reid.errors import Unavailable
from reid.serving.remote import STALE_TRIES, guarded


def failing(times: int, error: Exception):
    """A dependency call failing ``times`` times with ``error``, then answering; counts its calls."""
    calls = []

    async def call(items):
        calls.append(items)
        if len(calls) <= times:
            raise error
        return items * 2

    return call, calls


def test_connections_gone_stale_together_are_each_sent_again():
    call, calls = failing(STALE_TRIES - 1, aiohttp.ServerDisconnectedError())
    assert asyncio.run(guarded(call, "detector")(21)) == 42
    assert len(calls) == STALE_TRIES


def test_a_service_that_stays_unreachable_is_a_503_after_the_bound():
    call, calls = failing(100, aiohttp.ClientOSError(111, "Connection refused"))
    with pytest.raises(Unavailable, match="detector service is unavailable"):
        asyncio.run(guarded(call, "detector")(1))
    assert len(calls) == STALE_TRIES


def test_other_failures_are_not_sent_again():
    call, calls = failing(1, aiohttp.ClientPayloadError("cut"))
    with pytest.raises(Unavailable):
        asyncio.run(guarded(call, "embedder")(1))
    assert len(calls) == 1
