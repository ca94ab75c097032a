"""Errors a client caused, each with the HTTP status it is answered with."""

from __future__ import annotations

from http import HTTPStatus


class RequestError(Exception):
    """A request the service refuses; ``field`` names the form field at fault, if one is."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field

    def to_json(self) -> dict[str, str | None]:
        return {"error": str(self), "field": self.field}


class BadImage(RequestError):
    """Not decodable: empty, truncated or corrupt."""


class UnsupportedImage(RequestError):
    """Decodable perhaps, but not a format the service takes."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class BadForm(RequestError):
    """The form is malformed, or a field is missing, repeated, unknown or of the wrong kind."""


class UnsupportedMediaType(RequestError):
    """The body is not ``multipart/form-data``."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class TooLarge(RequestError):
    """Over a byte or pixel cap."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
