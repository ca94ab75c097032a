"""Hostile and broken requests to /compare, each with the status it must get.

Used by the tests and by scripts/soak.py. Each case is ``(name, request kwargs for
httpx.post, expected status)``.
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
import zlib

import numpy as np
from PIL import Image

HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but holds almost no data (a bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def jpeg_header_claiming(width: int, height: int) -> bytes:
    """A small JPEG with its frame header rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(Image.new("RGB", (16, 16), (9, 9, 9)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.cache
def png_at_pixel_cap(width: int = 8000, height: int = 5000, depth: int = 16, alpha: bool = True) -> bytes:
    """A blank RGB(A) PNG of ``width`` x ``height`` at 8 or 16 bits per channel, made in small
    memory: a few hundred kilobytes that decode to gigabytes."""
    channels = 4 if alpha else 3
    row = b"\x00" + bytes(width * channels * depth // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, 6 if alpha else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


@functools.cache
def jpeg_of_many_scans(scans: int = 5000) -> bytes:
    """A small progressive JPEG whose last scan is repeated ``scans`` times: each is a pass."""
    data = encode(Image.new("RGB", (64, 64), (9, 90, 200)), "JPEG", progressive=True)
    last_scan, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * scans + b"\xff\xd9"


@functools.cache
def jpeg_of_empty_segments(count: int = 1_000_000) -> bytes:
    """A JPEG with ``count`` empty comment segments before its frame (PIL parses each in Python)."""
    data = encode(Image.new("RGB", (16, 16), (9, 9, 9)), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


@functools.cache
def jpeg_of_fill_bytes(count: int = 19_000_000) -> bytes:
    """A JPEG with ``count`` fill bytes after its start (PIL steps over each in Python)."""
    data = encode(Image.new("RGB", (16, 16), (9, 9, 9)), "JPEG")
    return data[:2] + b"\xff" * count + data[2:]


@functools.cache
def png_of_many_chunks(count: int = 200_000) -> bytes:
    """A small PNG with ``count`` empty private chunks before its pixels."""
    data = small_png()
    return data[:33] + png_chunk(b"prVt", b"") * count + data[33:]


def multipart(
    parts: list[tuple[bytes, bytes | None, bytes]], boundary: bytes = b"hostile", closing: bool = True
) -> bytes:
    """A multipart body written by hand: ``(name, filename or None, data)`` parts."""
    chunks = []
    for name, filename, data in parts:
        disposition = (
            b'form-data; name="' + name + b'"' + (b'; filename="' + filename + b'"' if filename is not None else b"")
        )
        chunks.append(b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + data + b"\r\n")
    return b"".join(chunks) + (b"--" + boundary + b"--\r\n" if closing else b"")


def raw_form(content_types: list[str], parts: list[tuple[bytes, bytes | None, bytes]], closing: bool = True) -> dict:
    """httpx.post arguments for a hand-written body under the given Content-Type headers."""
    return {"content": multipart(parts, closing=closing), "headers": [("content-type", t) for t in content_types]}


def small_png() -> bytes:
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)), "PNG")


def files(image1: tuple | None, image2: tuple | None = None) -> dict:
    ok = ("ok.png", small_png(), "image/png")
    chosen = {"image1": image1, "image2": image2 or ok}
    return {k: v for k, v in chosen.items() if v is not None}


def cases() -> list[tuple[str, dict, int]]:
    """Every crafted case: name, httpx.post keyword arguments, expected status."""
    tiny = Image.new("RGB", (8, 8), (200, 10, 10))
    jpeg = encode(tiny, "JPEG")
    png = small_png()
    threshold = lambda value: {"files": files(("a.png", png, "image/png")), "data": {"threshold": value}}  # noqa: E731
    form = "multipart/form-data; boundary=hostile"
    good = [(b"image1", b"a.png", png), (b"image2", b"b.png", png)]
    return [
        ("empty body", {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=x"}}, 400),
        ("no content type", {"content": b"\x00"}, 415),
        ("json body", {"json": {"image1": "a", "image2": "b"}}, 415),
        ("urlencoded urls", {"data": {"image1": "http://169.254.169.254/", "image2": "http://127.0.0.1/"}}, 415),
        ("one byte", {"files": files(("a.jpg", b"\xff", "image/jpeg"))}, 415),
        ("random bytes", {"files": files(("a.jpg", np.random.default_rng(1).bytes(4096), "image/jpeg"))}, 415),
        ("empty file", {"files": files(("a.jpg", b"", "image/jpeg"))}, 400),
        ("truncated jpeg", {"files": files(("a.jpg", jpeg[: len(jpeg) // 2], "image/jpeg"))}, 400),
        ("truncated png", {"files": files(("a.png", png[:-30], "image/png"))}, 400),
        ("jpeg magic then zeros", {"files": files(("a.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg"))}, 400),
        ("png bomb header", {"files": files(("b.png", png_header_only(60000, 60000), "image/png"))}, 413),
        ("jpeg bomb header", {"files": files(("b.jpg", jpeg_header_claiming(60000, 60000), "image/jpeg"))}, 413),
        ("gif", {"files": files(("a.gif", encode(tiny, "GIF"), "image/gif"))}, 415),
        ("tiff", {"files": files(("a.tif", encode(tiny, "TIFF"), "image/tiff"))}, 415),
        ("webp", {"files": files(("a.webp", encode(tiny, "WEBP"), "image/webp"))}, 415),
        ("svg", {"files": files(("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"))}, 415),
        ("pdf", {"files": files(("a.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n", "application/pdf"))}, 415),
        ("html", {"files": files(("a.html", HTML, "text/html"))}, 415),
        ("png sent as text/html", {"files": files(("a.png", png, "text/html"))}, 200),
        ("1x1 png", {"files": files(("a.png", encode(Image.new("RGB", (1, 1)), "PNG"), "image/png"))}, 200),
        ("10000x10 png", {"files": files(("a.png", encode(Image.new("RGB", (10000, 10)), "PNG"), "image/png"))}, 200),
        ("missing image1", {"files": {"image2": ("b.png", png, "image/png")}}, 400),
        ("missing both", {"files": {"other": ("b.png", png, "image/png")}}, 400),
        ("extra field", {"files": files(("a.png", png, "image/png")), "data": {"colour": "red"}}, 400),
        (
            "duplicated image1",
            {"files": [("image1", ("a.png", png, "image/png"))] * 2 + [("image2", ("b.png", png, "image/png"))]},
            400,
        ),
        (
            "url in file field",
            {
                "files": {
                    "image1": (None, "http://169.254.169.254/latest/meta-data"),
                    "image2": ("b.png", png, "image/png"),
                }
            },
            400,
        ),
        ("empty text in file field", {"files": {"image1": (None, ""), "image2": ("b.png", png, "image/png")}}, 400),
        (
            "file in threshold",
            {"files": {**files(("a.png", png, "image/png")), "threshold": ("t.txt", b"0.5", "text/plain")}},
            400,
        ),
        ("threshold text", threshold("lots"), 400),
        ("threshold NaN", threshold("NaN"), 400),
        ("threshold -1", threshold("-1"), 400),
        ("threshold 1e308", threshold("1e308"), 400),
        ("threshold 10 kB", threshold("9" * 10_000), 400),
        ("threshold empty", threshold(""), 400),
        ("threshold 0", threshold("0"), 200),
        ("threshold 1", threshold("1"), 200),
        (
            "hundred parts",
            {"files": files(("a.png", png, "image/png")), "data": {f"f{i}": "x" for i in range(100)}},
            400,
        ),
        # What the framework would parse otherwise than the guard checks.
        ("media type in capitals", raw_form(["Multipart/Form-Data; boundary=hostile"], good), 200),
        ("charset utf-16", raw_form(["multipart/form-data; charset=utf-16; boundary=hostile"], good), 415),
        (
            "two content types",
            raw_form(["application/x-www-form-urlencoded", "multipart/form-data; boundary=hostile"], good),
            400,
        ),
        ("file name of 250 characters", raw_form([form], [(b"image1", b"a" * 250 + b".png", png), good[1]]), 400),
        ("NUL in a file name", raw_form([form], [(b"image1", b"a\x00.png", png), good[1]]), 400),
        ("no closing boundary", raw_form([form], good, closing=False), 400),
        (
            "pickle content type",
            {"content": pickle.dumps([1]), "headers": {"content-type": "application/vnd.bentoml+pickle"}},
            415,
        ),
        ("threshold in Arabic-Indic digits", threshold("\u0660.\u0665"), 400),
        # Decode work and decoded memory within the byte and pixel caps.
        ("JPEG of 5000 scans", {"files": files(("a.jpg", jpeg_of_many_scans(), "image/jpeg"))}, 413),
        ("JPEG of a million empty segments", {"files": files(("a.jpg", jpeg_of_empty_segments(), "image/jpeg"))}, 413),
        ("JPEG of 19 MB of fill bytes", {"files": files(("a.jpg", jpeg_of_fill_bytes(), "image/jpeg"))}, 400),
        ("PNG of 200000 chunks", {"files": files(("a.png", png_of_many_chunks(), "image/png"))}, 413),
        ("16-bit RGBA PNG at the pixel cap", {"files": files(("a.png", png_at_pixel_cap(), "image/png"))}, 413),
    ]


def front_door_cases(photo: bytes, padding: int = 4 * 2**20) -> list[tuple[str, str, str, dict, int]]:
    """Round three (issue 16), beyond /compare: ``(name, method, path, httpx arguments, expected
    status)``. None of them may be stored or leave its upload budget held; uploads carry
    ``padding`` bytes of image, so that a leaked budget shows within a few dozen requests.
    ``photo``: a JPEG of one person at least 100 px tall and 60 px wide."""
    padded = photo + bytes(padding)  # JPEG readers stop at the end-of-image marker

    def enrol(name: bytes, value: bytes) -> dict:
        """An enrolment (or search) form: the padded photo and one text field."""
        body = multipart([(b"image", b"p.jpg", padded), (name, None, value)])
        return {"content": body, "headers": {"content-type": "multipart/form-data; boundary=hostile"}}

    def nested(levels: int) -> bytes:
        return b"[" * levels + b"]" * levels

    long_boundary = b"b" * 300
    compare_body = multipart([(b"image1", b"a.jpg", padded), (b"image2", b"b.jpg", photo)], boundary=long_boundary)
    long_form = {"content": compare_body, "headers": {"content-type": "multipart/form-data; boundary=" + "b" * 300}}
    persons = "/gallery/persons"
    return [
        ("boundary of 300 characters", "POST", "/compare", long_form, 400),
        ("label nested 3000 levels", "POST", persons, enrol(b"label", nested(3000)), 400),
        ("bbox nested 3000 levels", "POST", persons, enrol(b"bbox", nested(3000)), 400),
        ("metadata nested 2000 levels", "POST", persons, enrol(b"metadata", b'{"a":' + nested(1999) + b"}"), 400),
        ("metadata nested 40 levels", "POST", persons, enrol(b"metadata", b'{"a":' + nested(39) + b"}"), 400),
        ("top_k nested 3000 levels", "POST", "/gallery/search", enrol(b"top_k", nested(3000)), 400),
        ("metadata with a lone surrogate", "POST", persons, enrol(b"metadata", b'{"note":"\\ud800"}'), 400),
        ("metadata NaN", "POST", persons, enrol(b"metadata", b'{"x":NaN}'), 400),
        ("metadata Infinity", "POST", persons, enrol(b"metadata", b'{"x":-Infinity}'), 400),
        ("metadata 1e999", "POST", persons, enrol(b"metadata", b'{"x":1e999}'), 400),
        ("label of invalid UTF-8", "POST", persons, enrol(b"label", b"caf\xe9 \xff"), 400),
        ("bbox 1x1", "POST", persons, enrol(b"bbox", b"0,0,1,1"), 400),
        ("bbox 8x8", "POST", persons, enrol(b"bbox", b"0,0,8,8"), 400),
        ("bbox 20 px tall", "POST", persons, enrol(b"bbox", b"0,0,10,20"), 400),
        ("bbox a wide strip", "POST", persons, enrol(b"bbox", b"0,0,60,40"), 400),
        ("confirm given twice", "DELETE", "/gallery?confirm=false&confirm=true", {}, 400),
        ("offset given twice", "GET", "/gallery/persons?offset=0&offset=5", {}, 400),
        ("static name with a NUL", "GET", "/static_content/%00", {}, 404),
        ("static name of 300 characters", "GET", "/static_content/" + "a" * 300, {}, 404),
    ]


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send ``request`` bytes as they are (lying headers included) and read the whole answer."""
    from reid_devtools.attacks import connect

    answer = b""
    with connect(url) as connection:
        connection.sendall(request)
        while chunk := connection.recv(65536):
            answer += chunk
    return answer
