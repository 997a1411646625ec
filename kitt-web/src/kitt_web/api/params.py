"""Reading query parameters and JSON bodies: every problem is a 400 naming the field."""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

import kitt
from kitt_web.errors import ApiError, bad_request


def one(request: web.Request, name: str, default: str | None = None) -> str | None:
    """The parameter's one value; an empty one (what a form's blank field sends) counts
    as absent."""
    values = [v for v in request.query.getall(name, []) if v != ""]
    if len(values) > 1:
        raise bad_request(name, "given more than once")
    if not values:
        return default
    value = values[0]
    if "\x00" in value or len(value) > 1000:
        raise bad_request(name, "not a usable value")
    return value


def integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    if "" in request.query.getall(name, []):
        raise bad_request(name, "is empty", f"give a number from {low} to {high}, or leave "
                                            "it out")
    text = one(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise bad_request(name, f"{value} is out of range", f"use {low} to {high}")
    return value


def number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad_request(name, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise bad_request(name, f"{text!r} is not a finite number")
    return value


def timestamp(request: web.Request, name: str) -> datetime | None:
    text = one(request, name)
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(name, f"{text!r} is not an ISO 8601 date or time",
                          "e.g. 2026-12-01 or 2026-12-01T08:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def choice(request: web.Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = one(request, name, default)
    if value not in allowed:
        raise bad_request(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


FILTER_FIELDS = ("model", "engine", "engine_version", "suite", "status", "fingerprint", "mode")


def run_filter(request: web.Request) -> kitt.RunFilter:
    """The runs filter every runs endpoint (and page) shares, from the query string:
    model, engine (aliases accepted), engine_version, suite, status, fingerprint, mode,
    since, until, and `metric=BENCHMARK:METRIC:MIN:MAX` (repeatable; either bound may
    be empty)."""
    values: dict[str, Any] = {}
    for field in FILTER_FIELDS:
        value = one(request, field)
        if value:
            values[field] = kitt.engine_name(value) if field == "engine" else value
    since, until = timestamp(request, "since"), timestamp(request, "until")
    if since and until and since >= until:
        raise bad_request("until", "is not after since")
    bounds = []
    for text in filter(None, request.query.getall("metric", [])):
        parts = text.split(":")
        if len(parts) != 4 or not parts[0] or not parts[1] or not (parts[2] or parts[3]):
            raise bad_request("metric", f"{text!r} is not BENCHMARK:METRIC:MIN:MAX",
                              "e.g. throughput:output_tokens_per_s:100: (at least 100)")
        low = number(parts[2], "metric") if parts[2] else None
        high = number(parts[3], "metric") if parts[3] else None
        if low is not None and high is not None and low > high:
            raise bad_request("metric", f"{text!r}: the minimum is above the maximum")
        bounds.append(kitt.MetricBound(parts[0], parts[1], low, high))
    if len(bounds) > 10:
        raise bad_request("metric", "more than 10 bounds")
    return kitt.RunFilter(since=since, until=until, metrics=tuple(bounds), **values)


def encode_cursor(sort: str, descending: bool, value: Any, run_id: str) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, descending, value, run_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort: str, descending: bool) -> tuple[Any, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor_sort, cursor_desc, value, run_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad_request("cursor", "is not a cursor this server gave",
                          "pass next_cursor from the previous page unchanged") from None
    if (cursor_sort, cursor_desc) != (sort, descending) or not isinstance(run_id, str) \
            or not isinstance(value, str | int | float):
        raise bad_request("cursor", "belongs to another sort order",
                          "start again without a cursor when changing the sort")
    return value, run_id


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be JSON",
                       "send Content-Type: application/json")
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}",
                       "send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object", None)
    return body


def json_text(text: str, status: int = 200) -> web.Response:
    """A response from JSON already serialized (stored documents are sent as stored)."""
    return web.Response(text=text, status=status, content_type="application/json")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return kitt.unstructure(value)


def json_response(value: Any, status: int = 200) -> web.Response:
    return json_text(dumps(value), status)


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The raw body, refused (413) past `limit` bytes: for the few routes that take more
    than the application-wide limit (the request is streamed, not buffered first)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the {what} is over {limit} bytes", "send less")
    parts, size = [], 0
    async for chunk in request.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"the {what} is over {limit} bytes", "send less")
        parts.append(chunk)
    return b"".join(parts)
