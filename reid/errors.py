"""Errors a request meets, each with the HTTP status (and headers) it is answered with."""

from __future__ import annotations

from http import HTTPStatus


class RequestError(Exception):
    """A request the service refuses; ``field`` names the form field at fault, if one is."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST
    reason = "bad_request"  # label of the rejected-requests metric

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field

    def to_json(self) -> dict[str, str | None]:
        """The refusal's body: ``{"error", "field"}``."""
        return {"error": str(self), "field": self.field}

    def headers(self) -> dict[str, str]:
        """Headers the refusal is answered with (none by default)."""
        return {}


class BadImage(RequestError):
    """Not decodable: empty, truncated or corrupt."""

    reason = "bad_image"


class UnsupportedImage(RequestError):
    """Decodable perhaps, but not a format the service takes."""

    reason = "unsupported_image"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class BadForm(RequestError):
    """The form is malformed, or a field is missing, repeated, unknown or of the wrong kind."""

    reason = "bad_form"


class UnsupportedMediaType(RequestError):
    """The body is not ``multipart/form-data``."""

    reason = "not_multipart"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class TooLarge(RequestError):
    """Over a byte or pixel cap."""

    reason = "too_large"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Unauthorized(RequestError):
    """An API key is required and was missing or wrong."""

    reason = "unauthorized"
    status = HTTPStatus.UNAUTHORIZED

    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate: Bearer``."""
        return {"WWW-Authenticate": "Bearer"}


class Unavailable(RequestError):
    """The service is overloaded, a model service failed, or something broke inside; the client
    should retry later."""

    reason = "unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    retry_after_seconds = 1

    def headers(self) -> dict[str, str]:
        """``Retry-After``: when to try again."""
        return {"Retry-After": str(self.retry_after_seconds)}


class TimedOut(Unavailable):
    """The request took longer than the configured timeout."""

    reason = "timeout"
    status = HTTPStatus.GATEWAY_TIMEOUT


class NotFound(RequestError):
    """No such path."""

    reason = "not_found"
    status = HTTPStatus.NOT_FOUND


class MethodNotAllowed(RequestError):
    """A known path asked with another method than it answers."""

    reason = "bad_method"
    status = HTTPStatus.METHOD_NOT_ALLOWED

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        """``Allow``: the methods the path takes."""
        return {"Allow": self.allow}


class UploadTooSlow(RequestError):
    """The body did not arrive within the deadline or at the minimum rate."""

    reason = "slow_upload"
    status = HTTPStatus.REQUEST_TIMEOUT

    def headers(self) -> dict[str, str]:
        """``Connection: close``."""
        # The client may still be sending: the connection cannot carry another request.
        return {"Connection": "close"}


class GalleryModelMismatch(RequestError):
    """The gallery holds embeddings of another embedder than the service's."""

    reason = "gallery_model"
    status = HTTPStatus.CONFLICT


class IdempotencyConflict(RequestError):
    """An idempotency key sent again with a different request."""

    reason = "idempotency_conflict"
    status = HTTPStatus.CONFLICT


class GalleryUnavailable(Exception):
    """The gallery store cannot be opened: missing, corrupt, not a gallery, or unreachable.
    Raised at start-up; the service does not start over it."""
