"""Hostile and broken requests to /compare, each with the status it must get.

Used by the tests and by scripts/soak.py. Each case is ``(name, request kwargs for
httpx.post, expected status)``.
"""

from __future__ import annotations

import io
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
    ]
