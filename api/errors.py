"""Every error the API answers with: a status, a machine-readable code and a message a person
can act on. Nothing reaches a client as a 500 with a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Unauthorized
from api.mlflow_runs import MlflowUnavailable
from api.runs import RetryRefused
from api.schedules import ScheduleExists, ScheduleNotFound
from api.store import Conflict, NotFound, StoreUnavailable
from parallels.errors import ParallelsError, SpecInvalid

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        self.status, self.code, self.message, self.extra = status, code, message, extra
        super().__init__(message)


def _body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **extra}


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


async def handle(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return JSONResponse(_body(exc.code, exc.message, **exc.extra), exc.status)
    if isinstance(exc, SpecInvalid):
        problems = [{"path": p.path, "message": p.message} for p in exc.problems]
        return JSONResponse(_body("invalid_spec", str(exc), problems=problems), 422)
    if isinstance(exc, ValidationError):
        problems = [
            {"path": _loc(e["loc"]), "message": e["msg"]} for e in exc.errors(include_url=False)
        ]
        return JSONResponse(
            _body("invalid_request", "invalid request body", problems=problems), 422
        )
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return JSONResponse(_body("invalid_json", f"request body is not valid JSON: {exc}"), 400)
    if isinstance(exc, Unauthorized):
        return JSONResponse(
            _body("unauthorized", str(exc)), 401, headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, NotFound | ScheduleNotFound):
        return JSONResponse(_body("not_found", str(exc)), 404)
    if isinstance(exc, Conflict | RetryRefused | ScheduleExists):
        return JSONResponse(_body("conflict", str(exc)), 409)
    if isinstance(exc, StoreUnavailable | MlflowUnavailable):
        return JSONResponse(_body("unavailable", str(exc)), 503)
    if isinstance(exc, RPCError):
        if exc.status == RPCStatusCode.NOT_FOUND:
            return JSONResponse(_body("not_found", exc.message), 404)
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return JSONResponse(_body("conflict", exc.message), 409)
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            return JSONResponse(_body("invalid_request", f"Temporal: {exc.message}"), 422)
        return JSONResponse(_body("unavailable", f"Temporal: {exc.message}"), 503)
    if isinstance(exc, HTTPException):
        # Keep Starlette's headers: a 405 must say which methods are allowed (RFC 9110).
        return JSONResponse(
            _body("http_error", str(exc.detail)), exc.status_code, headers=exc.headers
        )
    if isinstance(exc, ParallelsError):
        return JSONResponse(_body(type(exc).__name__, str(exc)), 422)
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(_body("internal", "internal error; see the API server's log"), 500)
