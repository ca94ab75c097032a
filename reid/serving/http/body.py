"""Reading a request's body: the multipart Content-Type an upload must have (415), the byte cap
(413: from ``Content-Length`` before reading, else while reading), the deadline and minimum rate
(408), and the memory budget all bodies held at once share (503). Uvicorn has no per-body
deadline or rate, and Starlette reads a body unbounded: these are what they lack."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from python_multipart.multipart import parse_options_header

from reid.errors import BadForm, TooLarge, Unavailable, UnsupportedMediaType, UploadTooSlow
from reid.serving.http.asgi import Headers, Receive
from reid.serving.memory import ByteBudget

MAX_BOUNDARY_BYTES = 70  # RFC 2046's limit; the multipart parser raises past 256
# A body gets this long before the minimum upload rate applies.
UPLOAD_GRACE_S = 1.0


@dataclass(frozen=True)
class UploadLimits:
    """How much a body may be, and how fast it must come."""

    max_bytes: int  # a whole body
    timeout_s: float  # a whole body must arrive within this
    min_rate: float  # bytes per second, after UPLOAD_GRACE_S
    memory: int  # bytes of bodies held at once, all requests together


def too_large(max_bytes: int) -> TooLarge:
    """The refusal of a body over ``max_bytes``."""
    return TooLarge(f"the request body is over the limit of {max_bytes} bytes")


def multipart_boundary(headers: Headers, fields: tuple[str, ...], max_bytes: int) -> bytes:
    """The boundary of the one ``multipart/form-data`` Content-Type in UTF-8, after the byte cap
    on a declared Content-Length; ``fields`` are named in the refusal of another body."""
    content_types = [value for key, value in headers if key == b"content-type"]
    if len(content_types) > 1:
        raise BadForm("give one Content-Type header, not several")
    media_type, params = parse_options_header(content_types[0] if content_types else b"")
    if media_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise UnsupportedMediaType(f"send a multipart/form-data body with the fields {', '.join(fields)}")
    if len(params[b"boundary"]) > MAX_BOUNDARY_BYTES:
        raise BadForm(f"the multipart boundary is over {MAX_BOUNDARY_BYTES} characters (RFC 2046)")
    if params.get(b"charset", b"utf-8").lower() not in (b"utf-8", b"us-ascii"):
        raise UnsupportedMediaType("send the form in UTF-8 (no other charset)")
    lengths = {value for key, value in headers if key == b"content-length"}
    if len(lengths) > 1:
        raise BadForm("give one Content-Length header, not several")
    length = next(iter(lengths), b"")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large(max_bytes)
    return params[b"boundary"]


async def read_body(
    receive: Receive, limits: UploadLimits, budget: ByteBudget, held: list[int], max_bytes: int
) -> bytes:
    """The whole body, within the deadline and above the minimum rate (else UploadTooSlow), its
    bytes reserved from ``budget`` as they come, twice: the handler reads the files back from
    BentoML's copies (adds to ``held[0]``, for the caller to give back; 503 when it is spent)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    chunks: list[bytes] = []
    size = 0
    while True:
        elapsed = loop.time() - started
        # Time left before the deadline, and before the minimum rate is missed.
        wait = min(limits.timeout_s, UPLOAD_GRACE_S + size / limits.min_rate) - elapsed
        try:
            message = await asyncio.wait_for(receive(), timeout=max(wait, 0.0))
        except TimeoutError:
            raise UploadTooSlow(
                f"the body arrived too slowly: {size} bytes in {elapsed:.1f} s (it must arrive within"
                f" {limits.timeout_s:g} s, at {limits.min_rate:g} bytes/s at least)"
            ) from None
        if message["type"] == "http.disconnect":
            raise BadForm("the client disconnected before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        if not budget.try_reserve(2 * len(chunk)):
            raise Unavailable("busy: too many uploads held at once; retry shortly")
        held[0] += 2 * len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def normalised(headers: Headers, boundary: bytes, length: int) -> Headers:
    """The headers BentoML gets: one plain multipart Content-Type and the body's real length."""
    replaced = (b"content-type", b"content-length", b"transfer-encoding")
    kept = [(key, value) for key, value in headers if key not in replaced]
    quoted = b'"' + boundary.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return kept + [(b"content-type", b"multipart/form-data; boundary=" + quoted), (b"content-length", b"%d" % length)]
