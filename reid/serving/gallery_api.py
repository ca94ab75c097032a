"""The gallery's management routes: a FastAPI app the entry service mounts at ``/gallery`` with
``bentoml.asgi_app`` (BentoML's APIs take POST only), so that they are in ``/docs.json`` beside
the uploads. The request guard in front of the whole service gives them the API key, the
in-flight limit and a body cap; every error has the service's shape, ``{"error", "field"}``.

    GET    /gallery/persons?offset&limit    -> GalleryPage
    GET    /gallery/persons/{person_id}     -> GalleryEntry
    PATCH  /gallery/persons/{person_id}     JSON {"label"?, "metadata"?} -> GalleryEntry
    DELETE /gallery/persons/{person_id}     -> Deleted
    DELETE /gallery?confirm=true            -> Deleted

Enrolment and search are uploads: BentoML APIs (``service.py``), checked by the guard's forms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from reid.errors import BadForm, NotFound, RequestError
from reid.gallery.store import Gallery, StoredPerson
from reid.schemas import Deleted, GalleryEntry, GalleryPage
from reid.serving.gallery import DEFAULT_PAGE, MAX_PAGE, entry, parse_label, parse_metadata, strict_json

PERSON_ID = re.compile(r"[0-9a-f]{32}")
MAX_EDIT_BYTES = 8192  # an edit's JSON body: a label and 4 kB of metadata, escaped


class PersonEdit(BaseModel):
    """What ``PATCH /gallery/persons/{person_id}`` changes: the fields given, nothing else."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, description="New label, at most 200 printable characters; null removes it.")
    metadata: dict | None = Field(None, description="New metadata, a JSON object of at most 4 kB; replaces the old.")


def gallery_app(gallery: Callable[[], Gallery]) -> FastAPI:
    """The routes, over the gallery ``gallery()`` returns when a request comes."""
    app = FastAPI(title="ReID gallery", docs_url=None, redoc_url=None, openapi_url=None)
    _answer_errors_in_shape(app)

    def one(person_id: str) -> StoredPerson:
        person = gallery().get(person_id) if PERSON_ID.fullmatch(person_id) else None
        if person is None:
            raise NotFound(f"no person {person_id[:40]} in the gallery")
        return person

    @app.get("/persons", response_model=GalleryPage, summary="A page of the gallery, oldest first")
    def list_persons(
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> GalleryPage:
        persons, total = gallery().page(offset, limit)
        return GalleryPage(persons=[entry(p) for p in persons], total=total, offset=offset, limit=limit)

    @app.get("/persons/{person_id}", response_model=GalleryEntry, summary="One person of the gallery")
    def get_person(person_id: str) -> GalleryEntry:
        return entry(one(person_id))

    @app.patch(
        "/persons/{person_id}",
        response_model=GalleryEntry,
        summary="Change a person's label or metadata",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PersonEdit.model_json_schema()}},
            }
        },
    )
    async def edit_person(person_id: str, request: Request) -> GalleryEntry:
        changes = _edit(await request.body())
        updated = await run_in_threadpool(gallery().update, person_id, changes)
        if updated is None:
            raise NotFound(f"no person {person_id[:40]} in the gallery")
        return entry(updated)

    @app.delete("/persons/{person_id}", response_model=Deleted, summary="Remove, and erase, one person")
    def delete_person(person_id: str) -> Deleted:
        return Deleted(deleted=int(gallery().delete(one(person_id).person_id)))

    @app.delete("/", response_model=Deleted, summary="Remove, and erase, every person")
    def delete_all(confirm: Annotated[Literal["true"] | None, Query()] = None) -> Deleted:
        if confirm != "true":
            raise BadForm("deleting the whole gallery needs confirm=true", field="confirm")
        return Deleted(deleted=gallery().clear())

    return app


def _edit(body: bytes) -> dict:
    """The changes of an edit's JSON body, each checked as at enrolment; BadForm naming the field."""
    if len(body) > MAX_EDIT_BYTES:
        raise BadForm(f"the edit is over {MAX_EDIT_BYTES} bytes of JSON")
    try:
        value = strict_json(body.decode("utf-8"))
        edit = PersonEdit.model_validate(value)
    except UnicodeDecodeError:
        raise BadForm("send the edit as UTF-8 JSON") from None
    except ValidationError as error:
        location = error.errors()[0]["loc"]
        raise BadForm(error.errors()[0]["msg"], field=str(location[0]) if location else None) from None
    except ValueError as error:
        raise BadForm(f"send a JSON object: {error}") from None
    changes: dict = {}
    for name in edit.model_fields_set:
        text = json.dumps(getattr(edit, name), ensure_ascii=False)
        try:
            changes[name] = parse_label(text) if name == "label" else parse_metadata(text)
        except ValueError as error:
            raise BadForm(str(error), field=name) from None
    if not changes:
        raise BadForm("give label or metadata, or both")
    return changes


def _answer_errors_in_shape(app: FastAPI) -> None:
    """Every refusal as ``{"error", "field"}`` with its status: the service's own errors, FastAPI's
    validation errors (400, naming the parameter), and routing's 404 and 405 (with Allow)."""

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(error.to_json(), status_code=error.status, headers=error.headers())

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = str(first["loc"][-1]) if first.get("loc") else None
        return JSONResponse(BadForm(first["msg"], field=field).to_json(), status_code=400)

    @app.exception_handler(HTTPException)
    async def routing(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail), "field": None}, error.status_code, headers=error.headers)
