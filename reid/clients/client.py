"""Typed clients for a running ReID service, over BentoML's HTTP clients.

from reid.clients.client import ReIDClient

with ReIDClient("http://localhost:3000", api_key=None) as client:
    answer = client.compare("a.jpg", "b.jpg", threshold=0.4)   # a CompareResponse
    for match in answer.matches:
        print(match.image1_index, match.image2_index, match.similarity)
    group = client.group(["a.jpg", "b.jpg", "c.jpg"])          # a GroupResponse
    for identity in group.identities:
        print(identity.identity, [(m.image_index, m.person_index) for m in identity.members])
    alice = client.enrol("alice.jpg", label="alice")            # a GalleryEntry
    found = client.search("camera2.jpg")                        # a SearchResponse
    client.add_view(alice.person_id, "alice-camera2.jpg", source="camera 2")
    client.edit_person(alice.person_id, label="Alice", metadata={"team": "red"})
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import bentoml
import httpx
from bentoml.exceptions import BentoMLException

from reid.schemas import (
    CompareResponse,
    Deleted,
    GalleryEntry,
    GalleryPage,
    GroupResponse,
    SearchResponse,
    ViewDeleted,
)

# How long a client waits for a service to become ready (seconds). BentoML's clients wait their
# whole request timeout by default, retrying without pause: a wrong URL would hang for minutes.
READY_TIMEOUT_S = 10.0


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
    text = str(error)
    body = text.split(": ", 2)[-1] if text.startswith("Error making request") else text
    return _refusal(int(getattr(error, "error_code", 500)), body)


def _refusal(status: int, body: str) -> ReIDError:
    """The typed error of a refused request from its status and its ``{"error", "field"}`` body."""
    try:
        payload = json.loads(body)
        payload = payload[0] if isinstance(payload, list) else payload
        error_text, field = str(payload.get("error", body)), payload.get("field")
    except (ValueError, AttributeError):
        error_text, field = body, None
    return (ClientError if status < 500 else ServerError)(status, error_text, field)


def _arguments(image1: str | Path, image2: str | Path, threshold: float | None) -> dict:
    return {"image1": Path(image1), "image2": Path(image2), "threshold": threshold}


def _group_arguments(images: list[str | Path], threshold: float | None) -> dict:
    return {"images": [Path(image) for image in images], "threshold": threshold}


class ReIDClient:
    """Blocking client: ``compare(image1, image2, threshold=None) -> CompareResponse``,
    ``group(images, threshold=None) -> GroupResponse``, and the gallery: ``enrol``,
    ``add_view``, ``search``, ``gallery_page``, ``gallery_person``, ``edit_person``, ``merge``,
    ``delete_view``, ``delete_person``, ``clear_gallery``. A service not ready within
    ``ready_timeout`` seconds (still starting, or a wrong URL) is a ServerError 503."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 120, ready_timeout: float = READY_TIMEOUT_S
    ) -> None:
        try:
            self._client = bentoml.SyncHTTPClient(
                url, token=api_key, timeout=timeout, server_ready_timeout=ready_timeout
            )
        except BentoMLException as error:
            raise _typed_error(error) from error

    def compare(self, image1: str | Path, image2: str | Path, threshold: float | None = None) -> CompareResponse:
        """Which persons of ``image1`` appear in ``image2`` (files); ClientError or ServerError if refused."""
        return CompareResponse.model_validate(self._call("compare", **_arguments(image1, image2, threshold)))

    def group(self, images: list[str | Path], threshold: float | None = None) -> GroupResponse:
        """Which persons of the ``images`` (2 or more files) are the same people; ClientError
        or ServerError if refused."""
        return GroupResponse.model_validate(self._call("group", **_group_arguments(images, threshold)))

    def enrol(
        self,
        image: str | Path,
        bbox: list[int] | None = None,
        label: str | None = None,
        metadata: dict | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        retries: int = 2,
    ) -> GalleryEntry:
        """Store the person in ``bbox`` of ``image`` (or its only person) in the gallery, with
        the picture's ``source`` (a camera's name, say).

        Sent with an ``Idempotency-Key`` (``idempotency_key``, else a new one per call) and sent
        again with it, up to ``retries`` times, when the service answers 503 or 504 or the
        connection fails: the person is stored once whatever happened to the earlier answers."""
        values = {"bbox": bbox, "label": label, "metadata": metadata, "source": source}
        return GalleryEntry.model_validate(self._write("/gallery/persons", image, values, idempotency_key, retries))

    def add_view(
        self,
        person_id: str,
        image: str | Path,
        bbox: list[int] | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        retries: int = 2,
    ) -> GalleryEntry:
        """Give a gallery person one more view: the person in ``bbox`` of ``image`` (or its only
        person); retried as :meth:`enrol`. The person with its views (ClientError 404 when there is none)."""
        path = f"/gallery/persons/{person_id}/views"
        values = {"bbox": bbox, "source": source}
        return GalleryEntry.model_validate(self._write(path, image, values, idempotency_key, retries))

    def _write(self, path: str, image: str | Path, values: dict, key: str | None, retries: int) -> dict:
        """An upload that writes to the gallery, sent again with its key after a 503, a 504 or no answer."""
        request = _WriteRequest(path, image, values, key)
        for attempt in range(retries + 1):
            try:
                response = self._client.client.post(path, **request.arguments)
            except httpx.TransportError as error:
                if attempt == retries:
                    raise ServerError(503, f"no answer: {error}") from error
                continue
            wait = _retry_wait(response)
            if wait is None or attempt == retries:
                return _answer(response)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def search(self, image: str | Path, top_k: int | None = None, threshold: float | None = None) -> SearchResponse:
        """Every person of ``image`` with its most similar gallery persons."""
        return SearchResponse.model_validate(self._call("search", image=Path(image), top_k=top_k, threshold=threshold))

    def gallery_page(self, offset: int = 0, limit: int = 20) -> GalleryPage:
        """Gallery persons, oldest first."""
        return GalleryPage.model_validate(self._plain("GET", "/gallery/persons", {"offset": offset, "limit": limit}))

    def gallery_person(self, person_id: str) -> GalleryEntry:
        """One gallery person (ClientError 404 when there is none)."""
        return GalleryEntry.model_validate(self._plain("GET", f"/gallery/persons/{person_id}"))

    def edit_person(self, person_id: str, **changes: str | dict | None) -> GalleryEntry:
        """Change a gallery person's ``label`` (None removes it) and/or ``metadata`` (replaced);
        the person as stored now (ClientError 404 when there is none)."""
        return GalleryEntry.model_validate(self._plain("PATCH", f"/gallery/persons/{person_id}", body=changes))

    def delete_person(self, person_id: str) -> Deleted:
        """Remove one gallery person (ClientError 404 when there is none)."""
        return Deleted.model_validate(self._plain("DELETE", f"/gallery/persons/{person_id}"))

    def delete_view(self, person_id: str, view_id: str) -> ViewDeleted:
        """Remove one view of a gallery person; the person goes with its last view."""
        return ViewDeleted.model_validate(self._plain("DELETE", f"/gallery/persons/{person_id}/views/{view_id}"))

    def merge(self, person_id: str, other_id: str) -> GalleryEntry:
        """Move ``other_id``'s views to ``person_id`` and remove ``other_id``; the merged person."""
        body = {"from": other_id}
        return GalleryEntry.model_validate(self._plain("POST", f"/gallery/persons/{person_id}/merge", body=body))

    def clear_gallery(self) -> Deleted:
        """Remove every gallery person."""
        return Deleted.model_validate(self._plain("DELETE", "/gallery", {"confirm": "true"}))

    def _call(self, endpoint: str, **arguments) -> dict:
        """A BentoML API of the service; its refusal as ClientError or ServerError."""
        try:
            return getattr(self._client, endpoint)(**arguments)
        except BentoMLException as error:
            raise _typed_error(error) from error

    def _plain(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> dict:
        """A route BentoML's client does not know (the gallery's reads, edits and deletes)."""
        return _answer(self._client.client.request(method, path, params=params, json=body))

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> ReIDClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncReIDClient:
    """Asyncio client, used as ``async with AsyncReIDClient(url) as client:``;
    ``await client.compare(image1, image2, threshold=None) -> CompareResponse``,
    ``await client.group(images, threshold=None) -> GroupResponse``, and the whole gallery as
    :class:`ReIDClient` has it; ``ready_timeout`` as there."""

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 120, ready_timeout: float = READY_TIMEOUT_S
    ) -> None:
        self._client = bentoml.AsyncHTTPClient(url, token=api_key, timeout=timeout, server_ready_timeout=ready_timeout)

    async def compare(self, image1: str | Path, image2: str | Path, threshold: float | None = None) -> CompareResponse:
        """Which persons of ``image1`` appear in ``image2`` (files); ClientError or ServerError if refused."""
        return CompareResponse.model_validate(await self._call("compare", **_arguments(image1, image2, threshold)))

    async def group(self, images: list[str | Path], threshold: float | None = None) -> GroupResponse:
        """Which persons of the ``images`` (2 or more files) are the same people; ClientError
        or ServerError if refused."""
        return GroupResponse.model_validate(await self._call("group", **_group_arguments(images, threshold)))

    async def enrol(
        self,
        image: str | Path,
        bbox: list[int] | None = None,
        label: str | None = None,
        metadata: dict | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        retries: int = 2,
    ) -> GalleryEntry:
        """Store a person in the gallery, as :meth:`ReIDClient.enrol`."""
        values = {"bbox": bbox, "label": label, "metadata": metadata, "source": source}
        return GalleryEntry.model_validate(
            await self._write("/gallery/persons", image, values, idempotency_key, retries)
        )

    async def add_view(
        self,
        person_id: str,
        image: str | Path,
        bbox: list[int] | None = None,
        source: str | None = None,
        idempotency_key: str | None = None,
        retries: int = 2,
    ) -> GalleryEntry:
        """Give a gallery person one more view, as :meth:`ReIDClient.add_view`."""
        path = f"/gallery/persons/{person_id}/views"
        values = {"bbox": bbox, "source": source}
        return GalleryEntry.model_validate(await self._write(path, image, values, idempotency_key, retries))

    async def search(
        self, image: str | Path, top_k: int | None = None, threshold: float | None = None
    ) -> SearchResponse:
        """Every person of ``image`` with its most similar gallery persons."""
        arguments = {"image": Path(image), "top_k": top_k, "threshold": threshold}
        return SearchResponse.model_validate(await self._call("search", **arguments))

    async def gallery_page(self, offset: int = 0, limit: int = 20) -> GalleryPage:
        """Gallery persons, oldest first."""
        params = {"offset": offset, "limit": limit}
        return GalleryPage.model_validate(await self._plain("GET", "/gallery/persons", params))

    async def gallery_person(self, person_id: str) -> GalleryEntry:
        """One gallery person (ClientError 404 when there is none)."""
        return GalleryEntry.model_validate(await self._plain("GET", f"/gallery/persons/{person_id}"))

    async def edit_person(self, person_id: str, **changes: str | dict | None) -> GalleryEntry:
        """Change a gallery person's ``label`` and/or ``metadata``, as :meth:`ReIDClient.edit_person`."""
        return GalleryEntry.model_validate(await self._plain("PATCH", f"/gallery/persons/{person_id}", body=changes))

    async def delete_person(self, person_id: str) -> Deleted:
        """Remove one gallery person (ClientError 404 when there is none)."""
        return Deleted.model_validate(await self._plain("DELETE", f"/gallery/persons/{person_id}"))

    async def delete_view(self, person_id: str, view_id: str) -> ViewDeleted:
        """Remove one view of a gallery person, as :meth:`ReIDClient.delete_view`."""
        path = f"/gallery/persons/{person_id}/views/{view_id}"
        return ViewDeleted.model_validate(await self._plain("DELETE", path))

    async def merge(self, person_id: str, other_id: str) -> GalleryEntry:
        """Move ``other_id``'s views to ``person_id``, as :meth:`ReIDClient.merge`."""
        body = {"from": other_id}
        return GalleryEntry.model_validate(await self._plain("POST", f"/gallery/persons/{person_id}/merge", body=body))

    async def clear_gallery(self) -> Deleted:
        """Remove every gallery person."""
        return Deleted.model_validate(await self._plain("DELETE", "/gallery", {"confirm": "true"}))

    async def _plain(self, method: str, path: str, params: dict | None = None, body: dict | None = None) -> dict:
        """A route BentoML's client does not know (the gallery's reads, edits and deletes)."""
        return _answer(await self._client.client.request(method, path, params=params, json=body))

    async def _write(self, path: str, image: str | Path, values: dict, key: str | None, retries: int) -> dict:
        """An upload that writes to the gallery, as :meth:`ReIDClient._write`."""
        request = _WriteRequest(path, image, values, key)
        for attempt in range(retries + 1):
            try:
                response = await self._client.client.post(path, **request.arguments)
            except httpx.TransportError as error:
                if attempt == retries:
                    raise ServerError(503, f"no answer: {error}") from error
                continue
            wait = _retry_wait(response)
            if wait is None or attempt == retries:
                return _answer(response)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _call(self, endpoint: str, **arguments) -> dict:
        """A BentoML API of the service; its refusal as ClientError or ServerError."""
        try:
            return await getattr(self._client, endpoint)(**arguments)
        except BentoMLException as error:
            raise _typed_error(error) from error

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


class _WriteRequest:
    """An upload that writes to the gallery: its form, with an idempotency key (``key`` or a new
    one) so that it can be sent again safely."""

    def __init__(self, path: str, image: str | Path, values: dict, key: str | None) -> None:
        file = Path(image)
        fields = {name: json.dumps(value) for name, value in values.items() if value is not None}
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        self.arguments = {"files": {"image": (file.name, file.read_bytes())}, "data": fields, "headers": headers}


def _retry_wait(response: httpx.Response) -> float | None:
    """Seconds to wait before sending a write again (a 503 or 504), or None when the answer is final."""
    if response.status_code not in (503, 504):
        return None
    return min(float(response.headers.get("retry-after", "1")), 10.0)


def _answer(response: httpx.Response) -> dict:
    """A plain route's JSON answer, or its refusal as ClientError or ServerError."""
    if response.status_code >= 400:
        raise _refusal(response.status_code, response.text)
    return response.json()
