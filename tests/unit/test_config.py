"""Settings that contradict each other or the entry's BentoML traffic configuration are refused
before the service starts, naming the setting (one real start: tests/e2e/test_hostile.py)."""

import pytest
from pydantic import ValidationError

from reid.config import Settings, check_against_traffic


@pytest.fixture(scope="module")
def traffic() -> dict:
    """The entry service's BentoML traffic configuration, as service.py declares it."""
    from service import ReID

    return ReID.config["traffic"]


@pytest.mark.parametrize(
    ("values", "words"),
    [({"max_in_flight": 64}, "REID_MAX_IN_FLIGHT"), ({"request_timeout_s": 90}, "REID_REQUEST_TIMEOUT_S")],
)
def test_settings_over_the_entrys_traffic_limits_are_refused(traffic, values, words):
    with pytest.raises(ValueError, match=words):
        check_against_traffic(Settings(**values), traffic)
    check_against_traffic(Settings(), traffic)  # the defaults agree


def test_an_upload_budget_smaller_than_one_request_is_refused():
    with pytest.raises(ValidationError, match="REID_UPLOAD_MEMORY_BYTES"):
        Settings(upload_memory_bytes=1000)
