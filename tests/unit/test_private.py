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


def test_a_lone_request_waits_for_its_batch_at_most_the_bound():
    from bentoml._internal.marshal.dispatcher import Optimizer

    private.bound_batch_wait(0.01)
    optimizer = Optimizer(max_latency=20.0)
    for _ in range(60):  # a burst: each batch's first request waited 2 s for the previous batch
        optimizer.o_stat.append((8, 1.5, 2.0))
    optimizer.trigger_refresh()
    assert optimizer.wait == pytest.approx(0.01), "bentoml's batch optimizer changed (bound_batch_wait)"
    assert optimizer.o_a > 0  # the batch-duration fit is BentoML's own, untouched


def test_bentomls_request_folders_follow_tempfile_tempdir(tmp_path, monkeypatch):
    import tempfile

    from bentoml._internal.context import request_tempdir_pool

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = request_tempdir_pool.acquire()
    try:
        assert folder.startswith(str(tmp_path)), "BentoML's request folders no longer follow tempfile.tempdir"
    finally:
        request_tempdir_pool.release(folder)
        request_tempdir_pool.cleanup()


def test_an_apis_operation_stays_in_the_document_beside_a_mounted_apps_on_its_path():
    import bentoml
    from fastapi import FastAPI

    mounted = FastAPI()

    @mounted.get("/things")
    def listing() -> dict:
        return {}

    @bentoml.service
    @bentoml.asgi_app(mounted, path="/shelf")
    class Shelf:
        @bentoml.api(route="/shelf/things")
        def add(self, name: str) -> str:
            return name

    from _bentoml_sdk.service.openapi import generate_spec

    assert sorted(generate_spec(Shelf).asdict()["paths"]["/shelf/things"]) == ["get"], (
        "BentoML now keeps both operations: reid.private.document_apis_beside_mounts can go"
    )
    private.document_apis_beside_mounts(Shelf)
    assert sorted(Shelf.openapi_spec.asdict()["paths"]["/shelf/things"]) == ["get", "post"]
