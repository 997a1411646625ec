"""One error shape for the API, `{"error": {"code", "message", "hint"}}`, and the
middleware that gives it to every failure (HTML pages get a page saying the same)."""

from __future__ import annotations

import logging

import attrs
from aiohttp import web

import kitt
from kitt_web.storethreads import StoreUnavailable

log = logging.getLogger("kitt.web")


@attrs.define
class ApiError(Exception):
    status: int
    code: str
    message: str
    hint: str | None = None
    headers: dict[str, str] = attrs.field(factory=dict)

    def __str__(self) -> str:
        return self.message


def bad_request(field: str, problem: str, hint: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", f"{field}: {problem}", hint)


def not_found(what: str, hint: str | None = None) -> ApiError:
    return ApiError(404, "not_found", f"no {what}", hint)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
               429: "too_many_requests"}


def is_api(request: web.Request) -> bool:
    """A machine's endpoint: errors are JSON and a missing token a 401, never the login
    page (`/metrics` is Prometheus's)."""
    return request.path.startswith("/api/") or request.path == "/metrics"


def error_response(request: web.Request, error: ApiError) -> web.StreamResponse:
    if is_api(request) or request.headers.get("Accept", "").startswith("application/json"):
        body = {"error": {"code": error.code, "message": error.message, "hint": error.hint}}
        return web.json_response(body, status=error.status, headers=error.headers)
    from kitt_web.pages.render import error_page

    response = error_page(request, error)
    response.headers.update(error.headers)
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(request, error)
    except kitt.BadInput as error:
        return error_response(request, ApiError(400, "bad_request", error.message, error.hint))
    except StoreUnavailable as error:
        return error_response(request, ApiError(503, "store_unavailable", error.message,
                                                error.hint))
    except web.HTTPException as exc:
        if exc.status < 400 or (exc.status in (401, 403) and exc.headers.get("Location")):
            raise  # redirects
        code = _HTTP_CODES.get(exc.status, "error")
        hint = None
        if exc.status == 413:
            hint = "send a smaller body"
        elif exc.status == 405:
            hint = f"allowed: {exc.headers.get('Allow', '')}".strip()
        message = exc.reason if exc.status != 404 else f"no such path {request.path}"
        return error_response(request, ApiError(exc.status, code, message, hint or None,
                                                {"Allow": exc.headers["Allow"]}
                                                if "Allow" in exc.headers else {}))
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(request, ApiError(500, "internal",
                                                "the server failed on this request",
                                                "see the server's log; report it if it "
                                                "repeats"))
