"""Upload forms: each declared once (:class:`UploadForm`: its fields, what each takes and how its
text is read), and from that declaration both the front door's checks of a body
(:func:`check_form`) and the API's signature and document (:meth:`UploadForm.field_info`,
:meth:`UploadForm.openapi_schema`). The parts are read with python-multipart's parser, bounded
here: Starlette's form reading would spool the files again and cannot tell a body cut short.

A form that passed is handed to the route's handler on its request: :func:`checked_form`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from reid.errors import BadForm
from reid.serving.http.asgi import Scope

MAX_TEXT_BYTES = 8192  # the largest text field: 4 kB of gallery metadata, escaped
# File names end up in BentoML's temporary file names: keep them well inside a file system's 255.
MAX_FILENAME_BYTES = 128
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_STATE_KEY = "reid.form"  # where a checked form waits in its request's scope["state"]


@dataclass(frozen=True)
class FileField:
    """A file field: what it is, and how many files it takes, (fewest, most)."""

    description: str = "A JPEG or PNG image."
    counts: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class TextField:
    """A text field: ``parse(text)`` reads its value (ValueError, in words, to refuse it);
    ``bounds`` are the pydantic constraints, the ones ``parse`` enforces, that the API's
    signature and document state."""

    parse: Callable[[str], object]
    description: str = ""
    bounds: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadForm:
    """The fields of one upload endpoint, in order; ``check_file(field, data)`` refuses a file's
    bytes by raising a RequestError; ``headers``: the request headers the endpoint reads (lower
    case), each with its check of the value (None: not given)."""

    fields: Mapping[str, FileField | TextField]
    check_file: Callable[[str, bytes], object] | None = None
    max_bytes: int | None = None  # this endpoint's body cap; default: the front door's
    headers: Mapping[bytes, Callable[[bytes | None], object]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Every field the form takes."""
        return tuple(self.fields)

    @property
    def file_fields(self) -> tuple[str, ...]:
        """The fields that take files."""
        return tuple(name for name, spec in self.fields.items() if isinstance(spec, FileField))

    def counts(self, name: str) -> tuple[int, int]:
        """How many times a field may be given: (fewest, most)."""
        spec = self.fields[name]
        return spec.counts if isinstance(spec, FileField) else (0, 1)

    def field_info(self, name: str) -> Any:
        """What an API's signature says of the field beside its type (``Annotated[type, ...]``):
        its description and bounds."""
        spec = self.fields[name]
        return Field(description=spec.description, **(spec.bounds if isinstance(spec, TextField) else {}))

    def openapi_schema(self) -> dict:
        """The form as an OpenAPI ``multipart/form-data`` schema (for routes BentoML does not describe)."""
        properties = {
            name: {"type": "string", "description": spec.description}
            | ({"format": "binary"} if isinstance(spec, FileField) else {})
            for name, spec in self.fields.items()
        }
        required = [name for name in self.file_fields if self.counts(name)[0] > 0]
        return {"type": "object", "required": required, "properties": properties}


@dataclass(frozen=True)
class CheckedForm:
    """What the front door read of an upload that passed: the text fields as their parsers read
    them, the files by field (the last where one repeats), and the headers the form reads."""

    values: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, bytearray] = field(default_factory=dict)
    headers: Mapping[bytes, bytes] = field(default_factory=dict)


def with_checked_form(scope: Scope, form: CheckedForm) -> Scope:
    """The request's scope carrying ``form`` for its handler (Starlette's ``request.state``)."""
    return {**scope, "state": {**scope.get("state", {}), _STATE_KEY: form}}


def checked_form(scope: Mapping[str, Any]) -> CheckedForm:
    """The checked form of the request of ``scope`` (a request's ``.scope``); empty for a request
    that carried none."""
    return scope.get("state", {}).get(_STATE_KEY, CheckedForm())


@dataclass
class FormPart:
    """One part of a multipart body as the front door saw it."""

    name: str
    filename: bytes | None
    data: bytearray = field(default_factory=bytearray)  # a file's bytes; a text value's, up to MAX_TEXT_BYTES + 1
    value: object = None  # a text value as its parser read it

    @property
    def is_file(self) -> bool:
        """Whether the part came with a file name."""
        return self.filename is not None


def check_form(body: bytes, boundary: bytes, form: UploadForm) -> list[FormPart]:
    """The parts of a multipart body, checked against ``form``; BadForm naming the field at fault."""
    parts = _form_parts(body, boundary)
    names = [part.name for part in parts]
    for part in parts:
        spec = form.fields.get(part.name)
        if spec is None:
            raise BadForm(f"unknown field; expected {', '.join(form.names)}", field=part.name)
        most = form.counts(part.name)[1]
        if names.count(part.name) > most:
            raise BadForm("given more than once" if most == 1 else f"give at most {most} files", field=part.name)
        if isinstance(spec, FileField):
            _check_file_part(part)
        else:
            part.value = _text_value(part, spec)
    for name in form.file_fields:
        fewest = form.counts(name)[0]
        if names.count(name) < fewest:
            wanted = "a JPEG or PNG file" if fewest == 1 else f"at least {fewest} JPEG or PNG files"
            raise BadForm(f"field required: {wanted}", field=name)
    if form.check_file is not None:
        files = [part for part in parts if part.is_file]
        for part in files:
            form.check_file(_part_label(part, files, form), bytes(part.data))
    return parts


def _check_file_part(part: FormPart) -> None:
    if not part.is_file:
        raise BadForm("must be an uploaded file (with a filename), not text", field=part.name)
    if len(part.filename or b"") > MAX_FILENAME_BYTES or _CONTROL.search(part.filename or b""):
        raise BadForm(f"the file name must be at most {MAX_FILENAME_BYTES} bytes of text", field=part.name)


def _text_value(part: FormPart, spec: TextField) -> object:
    if part.is_file:
        raise BadForm("must be a text value, not a file", field=part.name)
    if len(part.data) > MAX_TEXT_BYTES:
        raise BadForm(f"longer than {MAX_TEXT_BYTES} bytes", field=part.name)
    try:
        return spec.parse(part.data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadForm("must be UTF-8 text", field=part.name) from None
    except RecursionError:
        raise BadForm("nested too deeply", field=part.name) from None
    except ValueError as error:
        raise BadForm(str(error), field=part.name) from error


def _part_label(part: FormPart, files: list[FormPart], form: UploadForm) -> str:
    """How an error names a file: its field, with its place among the field's files where the
    field takes several (``images[2]``)."""
    if form.counts(part.name)[1] == 1:
        return part.name
    same = [other for other in files if other.name == part.name]
    return f"{part.name}[{next(i for i, other in enumerate(same) if other is part)}]"


def _form_parts(body: bytes, boundary: bytes) -> list[FormPart]:
    """The parts of a multipart body, in order: name, file name, and text values."""
    parts: list[FormPart] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}
    disposition: list[bytes] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            disposition.append(header["value"])
        header["field"], header["value"] = b"", b""

    def on_headers_finished() -> None:
        kind, params = parse_options_header(disposition[-1] if disposition else b"")
        name = params.get(b"name")
        if kind != b"form-data" or name is None:
            raise BadForm("a form part has no Content-Disposition name")
        if _CONTROL.search(name):
            raise BadForm("a form part's name holds control characters")
        parts.append(FormPart(name.decode("utf-8", "replace"), params.get(b"filename")))
        disposition.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if part.is_file:
            part.data += data[start:end]
        elif len(part.data) <= MAX_TEXT_BYTES:
            part.data += data[start : min(end, start + MAX_TEXT_BYTES + 1 - len(part.data))]

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as error:
        raise BadForm(f"malformed multipart body ({error})") from error
    if not parts and body.strip():
        raise BadForm("malformed multipart body (no parts found)")
    if parts and parser.state != MultipartState.END:
        raise BadForm("malformed multipart body (no closing boundary: cut short?)")
    return parts
