"""Hostile input against the live service: a crafted corpus, generated uploads and forms, and
schemathesis on the service's own OpenAPI document. Never a 5xx; the server keeps answering."""

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from scripts.hostile import cases, small_png

CASES = cases()


@pytest.mark.parametrize(("name", "request_kwargs", "status"), CASES, ids=[c[0] for c in CASES])
def test_crafted_case_gets_its_status_and_a_json_error(server, name, request_kwargs, status):
    response = httpx.post(f"{server.url}/compare", timeout=60, **request_kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    if status >= 400:
        assert isinstance(body.get("error"), str) and body["error"]
    else:
        assert "matches" in body


fuzz = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@fuzz
@given(data=st.binary(max_size=2048), content_type=st.sampled_from(["image/jpeg", "image/png", "text/plain", ""]))
def test_generated_uploads_are_never_a_server_error(server, data, content_type):
    files = {"image1": ("x", data, content_type), "image2": ("y.png", small_png(), "image/png")}
    response = httpx.post(f"{server.url}/compare", files=files, timeout=60)
    assert response.status_code in (200, 400, 413, 415), response.text
    assert "error" in response.json() or "matches" in response.json()


@fuzz
@given(
    names=st.lists(st.sampled_from(["image1", "image2", "threshold", "x", ""]), max_size=5),
    threshold=st.one_of(st.text(max_size=40), st.floats(allow_nan=True, allow_infinity=True).map(repr)),
)
def test_generated_forms_are_never_a_server_error(server, names, threshold):
    parts = [
        (name, ("f.png", small_png(), "image/png")) if name.startswith("image") else (name, (None, threshold))
        for name in names
    ]
    response = httpx.post(f"{server.url}/compare", files=parts or None, data=None if parts else {"a": "b"}, timeout=60)
    assert response.status_code in (200, 400, 413, 415), response.text


def test_openapi_operations_never_fail_and_match_their_schema(server):
    """schemathesis, driven from a plain hypothesis test (its pytest plugin does not run on
    this pytest): valid and invalid cases for /compare, /compare/visualize and health."""
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.url}/docs.json").include(
        path_regex="^/(compare|compare/visualize|readyz|livez)$"
    )
    cases = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def check(case):
        case.call_and_validate(
            base_url=server.url, checks=[not_a_server_error, response_schema_conformance], timeout=60
        )

    check()


def test_server_still_ready_after_the_onslaught(server):
    assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
