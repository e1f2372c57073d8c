"""Errors of the admin API: ``ServingError`` bodies as JSON ``{"error": "..."}``.

Codes map to HTTP with the one table in ``tfsgate.core.status`` (TF Serving's ``ToHTTPStatusCode``):
NOT_FOUND 404, ALREADY_EXISTS and ABORTED 409, INVALID_ARGUMENT and FAILED_PRECONDITION 400,
PERMISSION_DENIED 403, UNAUTHENTICATED 401, UNAVAILABLE 503.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code, ServingError

log = logging.getLogger(__name__)


class AdminError(CatalogError):
    """A catalog error plus fields for the body (e.g. a lost race's current state)."""

    def __init__(self, code: Code, message: str, **details: Any) -> None:
        super().__init__(code, message)
        self.details = details


def error_response(exc: ServingError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message}
    if isinstance(exc, AdminError):
        body.update(exc.details)
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == Code.UNAUTHENTICATED else None
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


async def _serving_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServingError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(CatalogError(Code.INVALID_ARGUMENT, describe_validation(exc)))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


def describe_validation(exc: RequestValidationError) -> str:
    """One line per pydantic error: where (``body.version``) and what went wrong."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Every failure leaves as ``{"error": ...}``: serving errors, bad input, unknown paths."""
    app.add_exception_handler(ServingError, _serving_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
