"""The upload guard in front of a small ASGI app, over httpx's in-process transport."""

import httpx
import pytest

from reid.guard import RequestGuard, optional_unit_interval

pytestmark = pytest.mark.anyio

FILES = ("image1", "image2")


async def echo(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def client(max_bytes: int = 10_000, app=echo, **options) -> httpx.AsyncClient:
    guard = RequestGuard(
        app,
        paths=("/compare",),
        file_fields=FILES,
        text_fields={"threshold": optional_unit_interval},
        max_bytes=max_bytes,
        **options,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test")


def body(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    boundary = "guardtest"
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def post(parts, max_bytes: int = 10_000, path: str = "/compare") -> httpx.Response:
    content, content_type = body(*parts)
    async with client(max_bytes) as http:
        return await http.post(path, content=content, headers={"content-type": content_type})


GOOD = [("image1", "a.jpg", b"\xff\xd8 one"), ("image2", "b.png", b"\x89PNG two"), ("threshold", None, b"0.5")]


async def test_a_good_form_reaches_the_app_unchanged():
    response = await post(GOOD)
    assert response.status_code == 200
    assert response.content == body(*GOOD)[0]


@pytest.mark.parametrize(
    ("parts", "field", "words"),
    [
        (GOOD[1:], "image1", "field required"),
        ([GOOD[0], GOOD[0], GOOD[1]], "image1", "more than once"),
        ([*GOOD, ("extra", None, b"x")], "extra", "unknown field"),
        ([("image1", None, b"http://169.254.169.254/latest"), GOOD[1]], "image1", "uploaded file"),
        ([*GOOD[:2], ("threshold", "t.txt", b"0.5")], "threshold", "text value"),
        ([GOOD[0], GOOD[1]] + [(f"f{i}", None, b"x") for i in range(100)], "f0", "unknown field"),
        ([*GOOD[:2], ("threshold", None, b"9" * 2_000)], "threshold", "longer than"),
        ([*GOOD[:2], ("threshold", None, b"NaN")], "threshold", "from 0 to 1"),
        ([*GOOD[:2], ("threshold", None, b"1.5")], "threshold", "from 0 to 1"),
        ([*GOOD[:2], ("threshold", None, b"")], "threshold", "from 0 to 1"),
    ],
    ids=[
        "missing",
        "duplicated",
        "extra",
        "url-in-file-field",
        "file-in-text-field",
        "hundred-parts",
        "threshold-2kB",
        "threshold-nan",
        "threshold-over-1",
        "threshold-empty",
    ],
)
async def test_bad_forms_get_a_400_naming_the_field(parts, field, words):
    response = await post(parts)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert words in response.json()["error"]


async def test_not_multipart_is_415():
    async with client() as http:
        response = await http.post("/compare", json={"image1": "x"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["error"]


async def test_malformed_multipart_is_400():
    async with client() as http:
        response = await http.post(
            "/compare",
            content=b"garbage without boundaries",
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]


async def test_declared_length_over_the_cap_is_413_before_reading():
    content, content_type = body(*GOOD)
    async with client(max_bytes=len(content) - 1) as http:
        response = await http.post("/compare", content=content, headers={"content-type": content_type})
    assert response.status_code == 413


async def test_streamed_body_over_the_cap_is_413():
    content, content_type = body(*GOOD)

    async def stream():
        for i in range(0, len(content), 7):
            yield content[i : i + 7]

    async with client(max_bytes=len(content) - 1) as http:
        response = await http.post("/compare", content=stream(), headers={"content-type": content_type})
    assert response.status_code == 413


async def test_other_paths_and_methods_pass_through():
    async with client() as http:
        assert (await http.post("/other", content=b"anything")).status_code == 200
        assert (await http.get("/compare")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"x-api-key": "s3cret-but-longer"}, 401),
        ({"authorization": "Basic s3cret"}, 401),
        ({"authorization": "Bearer s3cret"}, 200),
        ({"x-api-key": "s3cret"}, 200),
    ],
    ids=["none", "wrong-bearer", "wrong-header", "basic", "bearer", "x-api-key"],
)
async def test_api_key(headers, status):
    content, content_type = body(*GOOD)
    async with client(api_key="s3cret") as http:
        response = await http.post("/compare", content=content, headers={"content-type": content_type, **headers})
        assert response.status_code == status
        if status == 401:
            assert "API key" in response.json()["error"] and response.headers["www-authenticate"] == "Bearer"
        # Health and other endpoints stay open.
        assert (await http.get("/readyz")).status_code == 200


async def test_requests_over_the_in_flight_limit_get_503_with_retry_after():
    import asyncio

    release = asyncio.Event()

    async def slow(scope, receive, send):
        await release.wait()
        await echo(scope, receive, send)

    content, content_type = body(*GOOD)
    async with client(app=slow, max_in_flight=2) as http:
        send = [
            asyncio.create_task(http.post("/compare", content=content, headers={"content-type": content_type}))
            for _ in range(2)
        ]
        await asyncio.sleep(0.1)
        busy = await http.post("/compare", content=content, headers={"content-type": content_type})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "busy" in busy.json()["error"]
        release.set()
        assert [r.status_code for r in await asyncio.gather(*send)] == [200, 200]
        # Capacity is given back once requests finish.
        again = await http.post("/compare", content=content, headers={"content-type": content_type})
        assert again.status_code == 200
