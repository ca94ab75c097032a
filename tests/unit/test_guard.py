"""The request guard in front of small ASGI apps, over httpx's in-process transport."""

import asyncio
import json

import httpx
import pytest

from reid.serving.fields import optional_unit_interval
from reid.serving.http.body import UploadLimits
from reid.serving.http.forms import FileField, TextField, UploadForm
from reid.serving.http.guard import RequestGuard

pytestmark = pytest.mark.anyio

FORM = UploadForm({"image1": FileField(), "image2": FileField(), "threshold": TextField(optional_unit_interval)})
LIMITS = UploadLimits(max_bytes=10_000, timeout_s=5.0, min_rate=1_000, memory=1_000_000)


async def echo(scope, receive, send):
    """Answers with what it got: the body, and the headers in a response header."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = json.dumps([[k.decode(), v.decode()] for k, v in scope["headers"]]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-seen-headers", headers)]})
    await send({"type": "http.response.body", "body": body})


def client(app=echo, limits: UploadLimits = LIMITS, forms: dict | None = None, **options) -> httpx.AsyncClient:
    guard = RequestGuard(
        app,
        forms=forms or {"/compare": FORM},
        limits=limits,
        known_path=lambda scope: scope["path"] in ("/readyz", "/other"),
        **options,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test")


def body(*parts: tuple[str, str | None, bytes], closing: bool = True) -> tuple[bytes, str]:
    boundary = "guardtest"
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    end = f"--{boundary}--\r\n".encode() if closing else b""
    return b"".join(chunks) + end, f"multipart/form-data; boundary={boundary}"


async def post(parts, **client_options) -> httpx.Response:
    content, content_type = body(*parts)
    async with client(**client_options) as http:
        return await http.post("/compare", content=content, headers={"content-type": content_type})


GOOD = [("image1", "a.jpg", b"\xff\xd8 one"), ("image2", "b.png", b"\x89PNG two"), ("threshold", None, b"0.5")]


def assert_refusal(response: httpx.Response, status: int, words: str = "", field: str | None = None) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error", "field"} and words in payload["error"], payload
    assert payload["field"] == field


async def test_a_good_form_reaches_the_app_unchanged_with_one_plain_content_type():
    content, _ = body(*GOOD)
    async with client() as http:
        response = await http.post(
            "/compare", content=content, headers={"content-type": "Multipart/Form-Data; boundary=guardtest"}
        )
    assert response.status_code == 200 and response.content == content
    seen = dict(json.loads(response.headers["x-seen-headers"]))
    assert seen["content-type"] == 'multipart/form-data; boundary="guardtest"'
    assert seen["content-length"] == str(len(content))


@pytest.mark.parametrize(
    ("parts", "field", "words"),
    [
        (GOOD[1:], "image1", "field required"),
        ([GOOD[0], GOOD[0], GOOD[1]], "image1", "more than once"),
        ([*GOOD, ("extra", None, b"x")], "extra", "unknown field"),
        ([("image1", None, b"http://169.254.169.254/latest"), GOOD[1]], "image1", "uploaded file"),
        ([*GOOD[:2], ("threshold", "t.txt", b"0.5")], "threshold", "text value"),
        ([GOOD[0], GOOD[1]] + [(f"f{i}", None, b"x") for i in range(100)], "f0", "unknown field"),
        ([*GOOD[:2], ("threshold", None, b"9" * 9_000)], "threshold", "longer than"),
        ([*GOOD[:2], ("threshold", None, b"NaN")], "threshold", "from 0 to 1"),
        ([*GOOD[:2], ("threshold", None, b"1.5")], "threshold", "from 0 to 1"),
        ([*GOOD[:2], ("threshold", None, b"")], "threshold", "from 0 to 1"),
        ([*GOOD[:2], ("threshold", None, "٠.٥".encode())], "threshold", "from 0 to 1"),
        ([("image1", "a" * 250 + ".jpg", b"x"), GOOD[1]], "image1", "file name"),
        ([("image1", "a\x00.jpg", b"x"), GOOD[1]], "image1", "file name"),
    ],
    ids=[
        "missing",
        "duplicated",
        "extra",
        "url-in-file-field",
        "file-in-text-field",
        "hundred-parts",
        "threshold-9kB",
        "threshold-nan",
        "threshold-over-1",
        "threshold-empty",
        "threshold-arabic-digits",
        "filename-250",
        "filename-nul",
    ],
)
async def test_bad_forms_get_a_400_naming_the_field(parts, field, words):
    assert_refusal(await post(parts), 400, words, field)


@pytest.mark.parametrize(
    ("content_types", "status", "words"),
    [
        (["application/json"], 415, "multipart/form-data"),
        ([], 415, "multipart/form-data"),
        (["multipart/form-data"], 415, "multipart/form-data"),  # no boundary
        (["multipart/form-data; charset=utf-16; boundary=guardtest"], 415, "UTF-8"),
        (["application/x-www-form-urlencoded", "multipart/form-data; boundary=guardtest"], 400, "one Content-Type"),
        (["application/vnd.bentoml+pickle"], 415, "multipart/form-data"),
    ],
    ids=["json", "none", "no-boundary", "utf-16", "two-content-types", "pickle"],
)
async def test_anything_but_one_utf8_multipart_content_type_is_refused(content_types, status, words):
    content, _ = body(*GOOD)
    headers = [(b"content-type", value.encode()) for value in content_types]
    async with client() as http:
        request = httpx.Request("POST", "http://test/compare", content=content, headers=headers)
        assert_refusal(await http.send(request), status, words)


@pytest.mark.parametrize(
    "content",
    [b"garbage without boundaries", body(*GOOD, closing=False)[0], body(*GOOD)[0][:-30]],
    ids=["garbage", "no-closing-boundary", "cut-short"],
)
async def test_malformed_or_cut_short_multipart_is_400(content):
    async with client() as http:
        response = await http.post(
            "/compare", content=content, headers={"content-type": "multipart/form-data; boundary=guardtest"}
        )
    assert_refusal(response, 400, "malformed")


async def test_the_form_checks_each_file_and_only_files():
    from reid.errors import UnsupportedImage

    def check_file(field, data):
        if not data.startswith((b"\xff\xd8", b"\x89PNG")):
            raise UnsupportedImage("not a JPEG or PNG image", field=field)

    form = UploadForm(FORM.fields, check_file=check_file)
    content, content_type = body(*GOOD)
    guard = RequestGuard(echo, forms={"/compare": form}, limits=LIMITS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as http:
        assert (await http.post("/compare", content=content, headers={"content-type": content_type})).status_code == 200
        bad, bad_type = body(("image1", "a.gif", b"GIF89a"), GOOD[1])
        response = await http.post("/compare", content=bad, headers={"content-type": bad_type})
    assert_refusal(response, 415, "not a JPEG", "image1")


async def test_declared_length_over_the_cap_is_413_before_reading():
    content, content_type = body(*GOOD)
    limits = UploadLimits(max_bytes=len(content) - 1, timeout_s=5, min_rate=1_000, memory=1_000_000)
    async with client(limits=limits) as http:
        response = await http.post("/compare", content=content, headers={"content-type": content_type})
    assert_refusal(response, 413, "over the limit")


async def test_streamed_body_over_the_cap_is_413():
    content, content_type = body(*GOOD)
    limits = UploadLimits(max_bytes=len(content) - 1, timeout_s=5, min_rate=1_000, memory=1_000_000)

    async def stream():
        for i in range(0, len(content), 7):
            yield content[i : i + 7]

    async with client(limits=limits) as http:
        response = await http.post("/compare", content=stream(), headers={"content-type": content_type})
    assert_refusal(response, 413, "over the limit")


async def trickle(content: bytes, pause: float):
    for i in range(len(content)):
        await asyncio.sleep(pause)
        yield content[i : i + 1]


@pytest.mark.parametrize(
    ("limits", "pause"),
    [
        (UploadLimits(max_bytes=10_000, timeout_s=0.5, min_rate=1, memory=1_000_000), 0.01),  # deadline
        (UploadLimits(max_bytes=10_000, timeout_s=60, min_rate=100, memory=1_000_000), 0.05),  # minimum rate
    ],
    ids=["deadline", "minimum-rate"],
)
async def test_a_body_that_arrives_too_slowly_is_408_and_closes(limits, pause):
    content, content_type = body(*GOOD)
    async with client(limits=limits) as http:
        response = await http.post("/compare", content=trickle(content, pause), headers={"content-type": content_type})
    assert_refusal(response, 408, "too slowly")
    assert response.headers["connection"] == "close"


async def test_a_slow_upload_does_not_hold_an_in_flight_slot():
    content, content_type = body(*GOOD)
    limits = UploadLimits(max_bytes=10_000, timeout_s=2, min_rate=1, memory=1_000_000)
    async with client(limits=limits, max_in_flight=1) as http:
        slow = asyncio.create_task(
            http.post("/compare", content=trickle(content, 0.01), headers={"content-type": content_type})
        )
        await asyncio.sleep(0.2)
        fast = await http.post("/compare", content=content, headers={"content-type": content_type})
        assert fast.status_code == 200
        assert (await slow).status_code in (200, 408)


async def test_bodies_over_the_memory_budget_get_503():
    content, content_type = body(*GOOD)
    limits = UploadLimits(max_bytes=10_000, timeout_s=5, min_rate=1_000, memory=len(content))  # held twice
    async with client(limits=limits) as http:
        response = await http.post("/compare", content=content, headers={"content-type": content_type})
    assert_refusal(response, 503, "busy")
    assert response.headers["retry-after"] == "1"


async def test_unknown_paths_get_a_json_404_and_known_ones_pass():
    async with client() as http:
        assert_refusal(await http.get("/nope"), 404, "no such path")
        assert_refusal(await http.post("/compare/../etc", content=b"x"), 404, "no such path")
        assert (await http.post("/other", content=b"anything")).status_code == 200
        response = await http.get("/compare")
        assert_refusal(response, 405, "takes POST")
        assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("status", "payload", "expected", "field"),
    [
        (500, {"error": "An unexpected error has occurred"}, 503, None),
        (429, {"error": "Too many requests"}, 503, None),
        (504, "Gateway Timeout", 504, None),
        (400, {"error": "1 validation error", "detail": [{"loc": ["threshold"], "msg": "bad"}]}, 400, "threshold"),
        (404, "Not Found", 404, None),
    ],
    ids=["500", "429", "504", "pydantic-400", "text-404"],
)
async def test_errors_from_inside_leave_in_our_shape(status, payload, expected, field):
    async def failing(scope, receive, send):
        body_bytes = json.dumps(payload).encode() if isinstance(payload, dict) else payload.encode()
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body_bytes})

    async with client(app=failing) as http:
        response = await http.get("/readyz")
    assert_refusal(response, expected, "", field)
    if expected in (503, 504):
        assert response.headers["retry-after"] == "1"


async def test_a_crash_inside_is_a_503():
    async def crashing(scope, receive, send):
        raise RuntimeError("boom")

    async with client(app=crashing) as http:
        response = await http.get("/readyz")
    assert_refusal(response, 503, "failed to answer")


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
        assert_refusal(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        release.set()
        assert [r.status_code for r in await asyncio.gather(*send)] == [200, 200]
        # Capacity is given back once requests finish.
        again = await http.post("/compare", content=content, headers={"content-type": content_type})
        assert again.status_code == 200


GROUP = UploadForm({"images": FileField(counts=(2, 3))}, max_bytes=300)


async def test_a_repeated_file_field_is_counted_and_its_files_are_named_by_place():
    seen = []

    def check(field: str, data: bytes) -> None:
        seen.append(field)

    form = UploadForm({"images": FileField(counts=(2, 3))}, check_file=check)
    async with client(forms={"/group": form}) as http:

        async def send(count: int) -> httpx.Response:
            content, content_type = body(*[("images", f"{i}.jpg", b"\xff\xd8") for i in range(count)])
            return await http.post("/group", content=content, headers={"content-type": content_type})

        assert_refusal(await send(1), 400, "at least 2", "images")
        assert_refusal(await send(4), 400, "at most 3", "images")
        assert (await send(3)).status_code == 200
    assert seen == ["images[0]", "images[1]", "images[2]"]


async def test_a_form_has_its_own_body_cap():
    async with client(forms={"/group": GROUP}) as http:
        content, content_type = body(*[("images", f"{i}.jpg", b"x" * 200) for i in range(2)])
        response = await http.post("/group", content=content, headers={"content-type": content_type})
    assert_refusal(response, 413, "300 bytes")


def mounted(*routes) -> dict:
    """client() options for a Starlette app mounted at /things, as bentoml.asgi_app mounts the
    gallery's routes at /gallery."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from reid.serving.http.routing import route_methods

    app = Starlette(routes=[Mount("/things", app=Starlette(routes=list(routes)))])
    return {"app": app, "mounts": frozenset({"/things"}), "methods": route_methods(app)}


async def test_a_mounted_apps_routes_sit_behind_the_key_and_wrong_methods_get_405():
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from reid.serving.http.guard import MAX_MANAGED_BODY

    async def listing(request):
        body = (await request.body()).decode()
        return JSONResponse({"listed": request.path_params.get("item", "all"), "body": body})

    routes = [
        Route("/", listing, methods=["DELETE"]),
        Route("/items", listing, methods=["GET"]),
        Route("/items/{item}", listing, methods=["DELETE", "PATCH"]),
    ]
    key = {"x-api-key": "k"}
    async with client(forms={"/things/items": FORM}, api_key="k", **mounted(*routes)) as http:
        assert_refusal(await http.get("/things/items"), 401, "API key")
        assert (await http.get("/things/items", headers=key)).json() == {"listed": "all", "body": ""}
        assert (await http.delete("/things/items/7", headers=key)).json()["listed"] == "7"
        assert (await http.patch("/things/items/7", content=b'{"a": 1}', headers=key)).json()["body"] == '{"a": 1}'
        assert (await http.delete("/things", headers=key)).json()["listed"] == "all"  # the mount's own path
        wrong = await http.put("/things/items", headers=key)
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD, POST"
        assert (await http.get("/things/items/7", headers=key)).headers["allow"] == "DELETE, PATCH"
        assert_refusal(await http.get("/things/nothing", headers=key), 404, "no such path")
        big = await http.patch("/things/items/7", content=b"x" * (MAX_MANAGED_BODY + 1), headers=key)
        assert_refusal(big, 413, f"{MAX_MANAGED_BODY} bytes")


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def recursive_json(text: str) -> object:
    return json.loads(text)  # a validator that lets RecursionError escape, as json.loads does


@pytest.mark.parametrize(
    ("content_type", "content", "words"),
    [
        ("multipart/form-data; boundary=" + "b" * 300, b"--" + b"b" * 300 + b"--\r\n", "boundary is over 70"),
        (None, None, "nested too deeply"),  # JSON nested past Python's recursion limit in a text field
        ("multipart/form-data; boundary=guardtest", b"--guardtest\r\nContent-Disposition: form-data", "malformed"),
    ],
    ids=["boundary-300", "nested-json", "cut-in-a-header"],
)
async def test_any_failure_while_checking_an_upload_is_a_refusal_that_gives_its_budget_back(
    content_type, content, words
):
    form = UploadForm({"image1": FileField(), "image2": FileField(), "threshold": TextField(recursive_json)})
    if content is None:
        content, content_type = body(*GOOD[:2], ("threshold", None, deep(3_000)))
    limits = UploadLimits(max_bytes=300_000, timeout_s=5, min_rate=1_000, memory=2 * 300_000)
    guard = RequestGuard(echo, forms={"/compare": form}, limits=limits)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as http:
        for _ in range(20):  # each would leak its reservation and the budget would run out
            response = await http.post("/compare", content=content, headers={"content-type": content_type})
            assert_refusal(response, 400, words, "threshold" if "nested" in words else None)
        good, good_type = body(*GOOD)
        assert (await http.post("/compare", content=good, headers={"content-type": good_type})).status_code == 200
    assert guard.bodies.free == guard.bodies.total


async def test_a_crash_inside_after_forwarding_gives_the_budget_back():
    async def crash(scope, receive, send):
        raise RuntimeError("boom")

    guard = RequestGuard(crash, forms={"/compare": FORM}, limits=LIMITS)
    content, content_type = body(*GOOD)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://test") as http:
        assert_refusal(await http.post("/compare", content=content, headers={"content-type": content_type}), 503)
    assert guard.bodies.free == guard.bodies.total and guard.in_flight == 0


def test_the_known_route_check_never_raises_on_names_the_file_system_refuses(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from reid.serving.http.routing import known_route

    (tmp_path / "page.html").write_text("hi")
    app = Starlette(routes=[Mount("/static_content", app=StaticFiles(directory=tmp_path))])
    known = known_route(app)
    scope = {"type": "http", "method": "GET", "root_path": ""}
    assert known({**scope, "path": "/static_content/page.html"})
    assert not known({**scope, "path": "/static_content/\x00"})
    assert not known({**scope, "path": "/static_content/" + "a" * 300})

    @settings(max_examples=300, deadline=None)
    @given(tail=st.binary(max_size=600))
    def never_raises(tail: bytes) -> None:
        assert known({**scope, "path": "/static_content/" + tail.decode("latin-1")}) in (True, False)

    never_raises()


@pytest.mark.parametrize("query", ["confirm=false&confirm=true", "offset=0&offset=5", "a=1&b=2&a=1"])
async def test_a_repeated_query_parameter_is_a_400(query):
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listing(request):
        return JSONResponse(dict(request.query_params))

    async with client(**mounted(Route("/items", listing, methods=["GET"]))) as http:
        assert_refusal(await http.get(f"/things/items?{query}"), 400, "more than once", query.split("=")[0])
        assert_refusal(await http.get(f"/readyz?{query}"), 400, "more than once", query.split("=")[0])
        assert (await http.get("/things/items?offset=5&limit=2")).json() == {"offset": "5", "limit": "2"}


async def test_a_mounted_apps_requests_count_towards_the_in_flight_limit():
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    release = asyncio.Event()

    async def listing(request):
        await release.wait()
        return JSONResponse({})

    async with client(max_in_flight=1, **mounted(Route("/items", listing, methods=["GET"]))) as http:
        first = asyncio.create_task(http.get("/things/items"))
        await asyncio.sleep(0.1)
        assert_refusal(await http.get("/things/items"), 503, "busy")
        release.set()
        assert (await first).status_code == 200
        assert (await http.get("/things/items")).status_code == 200


async def test_cached_paths_are_answered_from_their_first_200_and_keyed_paths_need_the_key():
    calls = []

    async def document(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"doc %d" % len(calls)})

    options = {"cached_paths": frozenset({"/readyz"}), "keyed_paths": frozenset({"/other"}), "api_key": "k"}
    async with client(app=document, **options) as http:
        assert [(await http.get("/readyz")).text for _ in range(3)] == ["doc 1"] * 3
        assert_refusal(await http.get("/other"), 401, "API key")
        assert (await http.get("/other", headers={"x-api-key": "k"})).status_code == 200
    assert calls == ["/readyz", "/other"]


async def test_invalid_utf8_in_a_text_field_is_a_400():
    response = await post([*GOOD[:2], ("threshold", None, b"0.\xff")])
    assert_refusal(response, 400, "UTF-8", "threshold")


async def test_a_request_header_the_form_reads_is_checked_and_given_once():
    from reid.serving.http.forms import checked_form

    seen = []

    async def app(scope, receive, send):
        seen.append(dict(checked_form(scope).headers))
        await echo(scope, receive, send)

    def check(value: bytes | None) -> None:
        if value is not None and not value.isalnum():
            raise ValueError("bad key")

    form = UploadForm({"image1": FileField(), "image2": FileField()}, headers={b"idempotency-key": check})
    content, content_type = body(*GOOD[:2])
    async with client(app=app, forms={"/compare": form}) as http:
        ok = await http.post(
            "/compare", content=content, headers={"content-type": content_type, "idempotency-key": "a1"}
        )
        assert ok.status_code == 200 and seen == [{b"idempotency-key": b"a1"}]
        twice = [("content-type", content_type), ("idempotency-key", "a"), ("idempotency-key", "b")]
        assert_refusal(await http.post("/compare", content=content, headers=twice), 400, "once")


async def test_a_form_on_a_path_with_parameters_is_checked_and_its_files_reach_the_mounted_route():
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from reid.serving.http.forms import checked_form

    async def upload(request):
        form = checked_form(request.scope)
        files = {name: bytes(data).decode() for name, data in form.files.items()}
        return JSONResponse({"item": request.path_params["item"], "files": files, "values": dict(form.values)})

    form = UploadForm({"image": FileField(), "threshold": TextField(optional_unit_interval)})
    routes = [Route("/items/{item}/views", upload, methods=["POST"])]
    async with client(forms={"/things/items/{item}/views": form}, **mounted(*routes)) as http:
        content, content_type = body(("image", "a.jpg", b"picture"), ("threshold", None, b"0.25"))
        answer = await http.post("/things/items/7/views", content=content, headers={"content-type": content_type})
        assert answer.json() == {"item": "7", "files": {"image": "picture"}, "values": {"threshold": 0.25}}
        content, content_type = body(("image", "a.jpg", b"picture"), ("colour", None, b"red"))
        refused = await http.post("/things/items/7/views", content=content, headers={"content-type": content_type})
        assert_refusal(refused, 400, "unknown field", "colour")
        assert_refusal(await http.post("/things/items/7/views/more"), 404, "no such path")
        wrong = await http.get("/things/items/7/views")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
