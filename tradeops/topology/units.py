"""Values written as text in a topology: durations (`500ms`, `30s`, `5m`), rates (`200/min`),
sizes (`512MiB`, `1GB`)."""

from __future__ import annotations

import re
from typing import Annotated, Any, NamedTuple

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$"


def parse_duration(value: Any) -> float:
    """`500ms`, `30s`, `5m`, `1h` or a bare number of seconds, to seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 30s or 5m")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration; write it as 500ms, 30s, 5m or 1h")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def format_duration(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{round(seconds * 1000, 3):g}ms"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "a duration: 500ms, 30s, 5m, 1h, or a number of seconds",
        }
    ),
]


class Rate(NamedTuple):
    """`requests` allowed per `seconds`."""

    requests: int
    seconds: float

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}.get(self.seconds)
        return f"{self.requests}/{unit or format_duration(self.seconds)}"


_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|second|min|minute|h|hour)\s*$")
_RATE_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
RATE_PATTERN = r"^\s*\d+\s*/\s*(\d+(\.\d+)?)?\s*(s|sec|second|min|minute|h|hour)\s*$"


def parse_rate(value: Any) -> Rate:
    if isinstance(value, Rate):
        return value
    if isinstance(value, str) and (m := _RATE.match(value)):
        count = int(m.group(1))
        if count <= 0:
            raise ValueError("a rate limit must allow at least one request")
        per = float(m.group(2)) if m.group(2) else 1.0
        if per <= 0:
            raise ValueError("a rate's period must be longer than zero")
        return Rate(count, per * _RATE_UNITS[m.group(3)])
    raise ValueError(f"{value!r} is not a rate; write it as 200/min, 10/s, 5000/h or 3/10s")


RateLimit = Annotated[
    Rate,
    BeforeValidator(parse_rate),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": RATE_PATTERN,
         "description": "a rate: 200/min, 10/s, 5000/h, 3/10s"}
    ),
]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_BYTES = {None: 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$"


def parse_size(value: Any) -> int:
    """`512MiB`, `1GB`, `64KiB` or a bare number of bytes, to bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB or 1GB")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        size = int(float(m.group(1)) * _BYTES[m.group(2)])
    else:
        raise ValueError(f"{value!r} is not a size; write it as 512MiB, 1GiB or 2GB")
    if size <= 0:
        raise ValueError("a size must be greater than zero")
    return size


def format_size(size: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if size >= _BYTES[unit] and size % _BYTES[unit] == 0:
            return f"{size // _BYTES[unit]}{unit}"
    return f"{size}B"


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SIZE_PATTERN},
                {"type": "integer", "exclusiveMinimum": 0},
            ],
            "description": "a size: 512MiB, 1GiB, 2GB, or a number of bytes",
        }
    ),
]
