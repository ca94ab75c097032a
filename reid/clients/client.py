"""Typed clients for a running ReID service, over BentoML's HTTP clients.

from reid.clients.client import ReIDClient

with ReIDClient("http://localhost:3000", api_key=None) as client:
    answer = client.compare("a.jpg", "b.jpg", threshold=0.4)   # a CompareResponse
    for match in answer.matches:
        print(match.image1_index, match.image2_index, match.similarity)
"""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
from bentoml.exceptions import BentoMLException

from reid.schemas import CompareResponse


class ReIDError(Exception):
    """The service refused or failed a request: ``status`` and the service's ``error`` text."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error
        self.field = field


class ClientError(ReIDError):
    """4xx: the request was wrong (bad image, bad field, missing API key...)."""


class ServerError(ReIDError):
    """5xx: the service could not answer (overloaded, a model service down); retry later."""


def _typed_error(error: BentoMLException) -> ReIDError:
    status = int(getattr(error, "error_code", 500))
    text = str(error)
    body = text.split(": ", 2)[-1] if text.startswith("Error making request") else text
    try:
        payload = json.loads(body)
        payload = payload[0] if isinstance(payload, list) else payload
        error_text, field = str(payload.get("error", body)), payload.get("field")
    except (ValueError, AttributeError):
        error_text, field = body, None
    return (ClientError if status < 500 else ServerError)(status, error_text, field)


def _arguments(image1: str | Path, image2: str | Path, threshold: float | None) -> dict:
    return {"image1": Path(image1), "image2": Path(image2), "threshold": threshold}


class ReIDClient:
    """Blocking client: ``compare(image1, image2, threshold=None) -> CompareResponse``."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120) -> None:
        try:
            self._client = bentoml.SyncHTTPClient(url, token=api_key, timeout=timeout)
        except BentoMLException as error:
            raise _typed_error(error) from error

    def compare(self, image1: str | Path, image2: str | Path, threshold: float | None = None) -> CompareResponse:
        """Which persons of ``image1`` appear in ``image2`` (files); ClientError or ServerError if refused."""
        try:
            answer = self._client.compare(**_arguments(image1, image2, threshold))
        except BentoMLException as error:
            raise _typed_error(error) from error
        return CompareResponse.model_validate(answer)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> ReIDClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncReIDClient:
    """Asyncio client, used as ``async with AsyncReIDClient(url) as client:``;
    ``await client.compare(image1, image2, threshold=None) -> CompareResponse``."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120) -> None:
        self._client = bentoml.AsyncHTTPClient(url, token=api_key, timeout=timeout)

    async def compare(self, image1: str | Path, image2: str | Path, threshold: float | None = None) -> CompareResponse:
        """Which persons of ``image1`` appear in ``image2`` (files); ClientError or ServerError if refused."""
        try:
            answer = await self._client.compare(**_arguments(image1, image2, threshold))
        except BentoMLException as error:
            raise _typed_error(error) from error
        return CompareResponse.model_validate(answer)

    async def close(self) -> None:
        """Close the connections."""
        await self._client.close()

    async def __aenter__(self) -> AsyncReIDClient:
        try:
            await self._client.__aenter__()
        except BentoMLException as error:
            raise _typed_error(error) from error
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
