"""The gallery's management routes: a FastAPI app the entry service mounts at ``/gallery`` with
``bentoml.asgi_app`` (BentoML's APIs take POST only), so that they are in ``/docs.json`` beside
the uploads. The front door in front of the whole service (:mod:`reid.serving.http`) gives them
the API key, the in-flight limit and a body cap; every error has the service's shape, ``{"error", "field"}``.

    GET    /gallery/persons?offset&limit               -> GalleryPage
    GET    /gallery/persons/{person_id}                -> GalleryEntry
    PATCH  /gallery/persons/{person_id}                JSON {"label"?, "metadata"?} -> GalleryEntry
    DELETE /gallery/persons/{person_id}                -> Deleted
    POST   /gallery/persons/{person_id}/views          image, bbox?, source? -> GalleryEntry
                                                       (header Idempotency-Key?)
    DELETE /gallery/persons/{person_id}/views/{view_id} -> ViewDeleted
    GET    /gallery/persons/{person_id}/views/{view_id}/crop -> the kept crop, JPEG
    POST   /gallery/persons/{person_id}/merge          JSON {"from"} -> GalleryEntry
    DELETE /gallery?confirm=true                       -> Deleted

Enrolment and search are uploads: BentoML APIs (``service.py``). An upload here (a view) is
checked by the front door against its form like those, and read from what it read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar, cast

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from reid.errors import BadForm, NotFound, RequestError
from reid.gallery.store import Gallery, StoredPerson
from reid.schemas import Deleted, ErrorResponse, GalleryEntry, GalleryPage, ViewDeleted
from reid.serving.fields import parse_label, parse_metadata, strict_json
from reid.serving.forms import VIEWS_PATH
from reid.serving.gallery import DEFAULT_PAGE, MAX_PAGE, entry, write_key
from reid.serving.http.forms import UploadForm, checked_form
from reid.serving.http.responses import error_response

if TYPE_CHECKING:
    from reid.serving.entry import UploadHandler
    from reid.serving.gallery import GalleryHandler

PERSON_ID = re.compile(r"[0-9a-f]{32}")
MAX_EDIT_BYTES = 8192  # an edit's JSON body: a label and 4 kB of metadata, escaped


Body = TypeVar("Body", bound=BaseModel)


class Services(Protocol):
    """What the routes use of the entry service."""

    gallery: Gallery
    gallery_handler: GalleryHandler
    handler: UploadHandler


class Merge(BaseModel):
    """What ``POST /gallery/persons/{person_id}/merge`` takes."""

    model_config = ConfigDict(extra="forbid")

    from_: str = Field(alias="from", description="The person whose views move to this one; it is removed.")


class PersonEdit(BaseModel):
    """What ``PATCH /gallery/persons/{person_id}`` changes: the fields given, nothing else."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, description="New label, at most 200 printable characters; null removes it.")
    metadata: dict | None = Field(None, description="New metadata, a JSON object of at most 4 kB; replaces the old.")


def gallery_app(service: Callable[[], Services], view_form: UploadForm) -> FastAPI:
    """The routes, over the service ``service()`` returns when a request comes; ``view_form``:
    what adding a view takes (the front door checks it; here it is documented)."""
    # Every route's refusals, in the service's shape, in the API document.
    refusals: dict[int | str, dict[str, Any]] = {
        status: {"model": ErrorResponse, "description": words}
        for status, words in (
            (400, "a field or query parameter refused, naming it"),
            (401, "a missing or wrong API key"),
            (404, "no such person or view"),
            (413, "a body over the limit"),
            (503, "busy (the in-flight limit) or failing: retry"),
        )
    }
    app = FastAPI(title="ReID gallery", docs_url=None, redoc_url=None, openapi_url=None, responses=refusals)
    _answer_errors_in_shape(app)

    def gallery() -> Gallery:
        return service().gallery

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

    @app.post(
        VIEWS_PATH.removeprefix("/gallery"),
        response_model=GalleryEntry,
        summary="Add a view of a person: another picture of it",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": view_form.openapi_schema()}},
            }
        },
    )
    async def add_view(person_id: str, request: Request):
        await run_in_threadpool(one, person_id)
        # The form as the front door read and checked it (VIEWS_PATH is among its forms).
        form = checked_form(request.scope)
        image = bytes(form.files["image"])
        bbox = cast("list[int] | None", form.values.get("bbox"))
        source = cast("str | None", form.values.get("source"))
        key_header = form.headers.get(b"idempotency-key")
        key = await run_in_threadpool(write_key, key_header, image, [person_id, bbox, source])
        services = service()
        return await services.handler.respond(
            [("image", image)],
            lambda images: services.gallery_handler.add_view(person_id, images[0], bbox, source, key),
        )

    @app.delete("/persons/{person_id}/views/{view_id}", response_model=ViewDeleted, summary="Remove, and erase, a view")
    def delete_view(person_id: str, view_id: str) -> ViewDeleted:
        one(person_id)
        removed, person = gallery().delete_view(person_id, view_id) if PERSON_ID.fullmatch(view_id) else (False, None)
        if not removed:
            raise NotFound(f"no view {view_id[:40]} of person {person_id}")
        return ViewDeleted(deleted=1, person=None if person is None else entry(person))

    @app.get(
        "/persons/{person_id}/views/{view_id}/crop",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}, "description": "The crop the embedder saw, JPEG"}},
        summary="A view's kept crop (REID_GALLERY_KEEP_CROPS)",
    )
    def view_crop(person_id: str, view_id: str) -> Response:
        ids = PERSON_ID.fullmatch(person_id) and PERSON_ID.fullmatch(view_id)
        data = gallery().crop(person_id, view_id) if ids else None
        if data is None:
            raise NotFound(f"no kept crop of view {view_id[:40]} of person {person_id[:40]}")
        # An erased person's crops must not outlive it in a browser's cache.
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post(
        "/persons/{person_id}/merge",
        response_model=GalleryEntry,
        summary="Move another person's views to this one, and remove that person",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": Merge.model_json_schema(by_alias=True)}},
            }
        },
    )
    async def merge(person_id: str, request: Request) -> GalleryEntry:
        other = _checked(Merge, await request.body()).from_
        for wanted in (person_id, other):
            await run_in_threadpool(one, wanted)
        if other == person_id:
            raise BadForm("a person cannot be merged into itself", field="from")
        merged = await run_in_threadpool(gallery().merge, person_id, other)
        if merged is None:
            raise NotFound(f"person {person_id} or {other} left the gallery meanwhile")
        return entry(merged)

    @app.delete("/", response_model=Deleted, summary="Remove, and erase, every person")
    def delete_all(confirm: Annotated[Literal["true"] | None, Query()] = None) -> Deleted:
        if confirm != "true":
            raise BadForm("deleting the whole gallery needs confirm=true", field="confirm")
        return Deleted(deleted=gallery().clear())

    return app


def _checked(model: type[Body], body: bytes) -> Body:
    """A JSON body of at most MAX_EDIT_BYTES read as ``model``; BadForm naming the field at fault."""
    if len(body) > MAX_EDIT_BYTES:
        raise BadForm(f"the body is over {MAX_EDIT_BYTES} bytes of JSON")
    try:
        return model.model_validate(strict_json(body.decode("utf-8")))
    except UnicodeDecodeError:
        raise BadForm("send the body as UTF-8 JSON") from None
    except ValidationError as error:
        location = error.errors()[0]["loc"]
        raise BadForm(error.errors()[0]["msg"], field=str(location[0]) if location else None) from None
    except ValueError as error:
        raise BadForm(f"send a JSON object: {error}") from None


def _edit(body: bytes) -> dict:
    """The changes of an edit's JSON body, each checked as at enrolment; BadForm naming the field."""
    edit = _checked(PersonEdit, body)
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
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = str(first["loc"][-1]) if first.get("loc") else None
        return error_response(BadForm(first["msg"], field=field))

    @app.exception_handler(HTTPException)
    async def routing(request: Request, error: HTTPException) -> JSONResponse:
        refusal = RequestError(str(error.detail))
        refusal.status = HTTPStatus(error.status_code)
        response = error_response(refusal)
        response.headers.update(error.headers or {})
        return response
