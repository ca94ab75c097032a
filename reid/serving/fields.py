"""What the text fields of the service's forms take: each parser reads a field's text into its
value, or raises ValueError saying in words what the field takes. BentoML's client sends every
value JSON-encoded and ``null`` for "not given"; curl sends text: both are read alike. The
gallery's edits (JSON bodies) are read with the same parsers.
"""

from __future__ import annotations

import json
import math
import re

MAX_LABEL_CHARS = 200
MAX_METADATA_BYTES = 4096
MAX_TOP_K = 100
DEFAULT_TOP_K = 5
MAX_JSON_DEPTH = 32  # levels of nesting in metadata
_INTEGER = re.compile(r"[0-9]{1,9}")
_IDEMPOTENCY_KEY = re.compile(rb"[\x21-\x7e]{1,200}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def strict_json(text: str) -> object:
    """Standard JSON that the answer could carry back, else ValueError: not JSON at all
    (``json.JSONDecodeError``), NaN, infinities, numbers out of range, lone surrogates, nesting
    deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except _NotStandard as error:
        raise ValueError(str(error)) from None
    _check_json(value, 1)
    return value


def _decoded(text: str) -> object:
    """A text field's value the way BentoML reads multipart text: JSON where it parses (its
    client sends every value JSON-encoded), else the text itself; JSON the answer could not
    carry back is refused (:func:`strict_json`)."""
    try:
        return strict_json(text)
    except json.JSONDecodeError:
        return text


class _NotStandard(Exception):
    """JSON that parses in Python but is not standard JSON, or not carried back intact."""


def _no_constant(name: str) -> float:
    raise _NotStandard(f"{name} is not a JSON number: give finite numbers only")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotStandard(f"{text[:20]} is out of range: give finite numbers only")
    return value


def _check_json(value: object, depth: int) -> None:
    """ValueError for JSON nested deeper than MAX_JSON_DEPTH or text that is not Unicode (a
    lone surrogate, from a ``\\ud800`` escape)."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_unicode(value)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_json(item, depth + 1)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff): not Unicode text") from None


def parse_bbox(text: str) -> list[int] | None:
    """``x1,y1,x2,y2`` in integer pixels, as text or a JSON list (``null`` or empty: none)."""
    value = _decoded(text)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
        if not all(_INTEGER.fullmatch(part) for part in value):
            raise ValueError("must be x1,y1,x2,y2: four non-negative integers (pixels)")
        value = [int(part) for part in value]
    if not (isinstance(value, list) and len(value) == 4 and all(type(v) is int and 0 <= v < 10**9 for v in value)):
        raise ValueError("must be x1,y1,x2,y2: four non-negative integers (pixels)")
    x1, y1, x2, y2 = value
    if x2 <= x1 or y2 <= y1:
        raise ValueError("must have x1 < x2 and y1 < y2")
    return [x1, y1, x2, y2]


def parse_label(text: str) -> str | None:
    """Text of at most MAX_LABEL_CHARS printable characters (``null``: none). A JSON string is
    its content; any other text, numbers included, is taken as it is."""
    try:
        value = _decoded(text)
    except ValueError:  # "NaN", "1e999": text, not numbers
        value = text
    if value is None:
        return None
    label = value if isinstance(value, str) else text
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"at most {MAX_LABEL_CHARS} characters")
    if not label.isprintable():
        raise ValueError("must be printable text (no control characters)")
    return label


def parse_metadata(text: str) -> dict:
    """A JSON object of at most MAX_METADATA_BYTES bytes (``null`` or empty: ``{}``)."""
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"at most {MAX_METADATA_BYTES} bytes of JSON")
    value = _decoded(text)
    if isinstance(value, str) and value.strip():
        value = _decoded(value)  # a JSON object sent as a JSON string
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def parse_top_k(text: str) -> int | None:
    """An integer from 1 to MAX_TOP_K (``null``: the default)."""
    value = _decoded(text)
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= MAX_TOP_K:
        raise ValueError(f"must be an integer from 1 to {MAX_TOP_K}")
    return value


def idempotency_key(value: bytes | None) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 200 visible ASCII characters (ValueError else)."""
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise ValueError("the Idempotency-Key header must be 1 to 200 visible ASCII characters")
    return value.decode("ascii")


def optional_unit_interval(text: str) -> float | None:
    """A number in [0, 1] written in ASCII, or ``null`` (what BentoML's client sends for "not given")."""
    if text.strip() == "null":
        return None
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError("must be a number from 0 to 1")
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a number from 0 to 1, not {text[:20]}")
    return value
