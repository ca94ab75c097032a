"""Structured logs: one JSON object per line on stderr, with BentoML's request id."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

LOGGER_NAME = "reid"


class RequestIdFilter(logging.Filter):
    """Adds the id BentoML gives the request being served (absent outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` to the record (None outside a request)."""
        from reid.private import request_id

        record.request_id = request_id()
        return True


def json_logger() -> logging.Logger:
    """The ``reid`` logger, writing JSON lines (idempotent)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
