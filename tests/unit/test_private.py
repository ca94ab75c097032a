"""Each private API of another library that reid.private uses is still where it was: an upgrade
that moves one fails here, naming it, before it fails in a server."""

import importlib.util

import pytest

from reid import private


def test_bentoml_request_id_is_in_its_trace_context():
    from bentoml._internal.context import trace_context

    assert hasattr(trace_context, "request_id"), "bentoml moved trace_context.request_id (reid.private.request_id)"
    assert private.request_id() is None  # outside a request


def test_bentoml_builds_a_services_app_with_to_asgi():
    import bentoml

    assert callable(getattr(bentoml.Service, "to_asgi", None)), "bentoml.Service.to_asgi is gone (serve_entry_behind)"


def test_bentomls_worker_module_still_exists():
    assert importlib.util.find_spec(private.BENTOML_WORKER_MODULE), (
        f"{private.BENTOML_WORKER_MODULE} is gone (podserve)"
    )


def test_uvicorn_picks_its_http_protocol_by_name_and_h11_keeps_its_hooks():
    import uvicorn.config
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert {"auto", "h11"} <= set(uvicorn.config.HTTP_PROTOCOLS), "uvicorn.config.HTTP_PROTOCOLS changed"
    for hook in ("connection_made", "handle_events", "on_response_complete", "connection_lost"):
        assert callable(getattr(H11Protocol, hook, None)), f"uvicorn's H11Protocol lost {hook} (limit_header_time)"
    assert issubclass(private.HeaderDeadlineProtocol, H11Protocol)


def test_torchreid_lists_its_architectures():
    pytest.importorskip("torchreid")
    assert "osnet_x0_25" in private.torchreid_architectures(), "torchreid moved __model_factory"
