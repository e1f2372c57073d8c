"""Errors of the admin API: one error type, one status table, JSON ``{"error": "..."}`` bodies.

The codes are the catalog's TF status names, mapped with TF Serving's ``ToHTTPStatusCode`` table
(the gateway's): NOT_FOUND 404, ALREADY_EXISTS and ABORTED 409, INVALID_ARGUMENT and
FAILED_PRECONDITION 400, PERMISSION_DENIED 403, UNAUTHENTICATED 401, UNAVAILABLE 503.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from control_plane.catalog.errors import CatalogError, StatusCode
from gateway.errors import HTTP_STATUS, Code

log = logging.getLogger(__name__)


class AdminError(CatalogError):
    """A catalog error plus fields for the body (e.g. a lost race's current state)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(code, message)
        self.details = details


def http_status(code: str) -> int:
    """TF Serving's HTTP status for a TF status name; 500 for a name it does not know."""
    try:
        return HTTP_STATUS[Code[code]]
    except KeyError:
        return 500


def error_response(exc: CatalogError) -> JSONResponse:
    body: dict[str, Any] = {"error": exc.message}
    if isinstance(exc, AdminError):
        body.update(exc.details)
    headers = {"WWW-Authenticate": "Bearer"} if exc.code == StatusCode.UNAUTHENTICATED else None
    return JSONResponse(body, status_code=http_status(exc.code), headers=headers)


async def _catalog_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CatalogError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(CatalogError(StatusCode.INVALID_ARGUMENT, describe_validation(exc)))


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
    """Every failure leaves as ``{"error": ...}``: catalog errors, bad input, unknown paths."""
    app.add_exception_handler(CatalogError, _catalog_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
