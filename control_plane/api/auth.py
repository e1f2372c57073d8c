"""Bearer-token check for mutations; the token holder's identity goes into the audit log."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code

# auto_error=False: a missing header is our 401 {"error": ...}, not FastAPI's 403.
bearer_scheme = HTTPBearer(auto_error=False, description="TFSGATE_ADMIN_TOKEN")


def check_token(expected: str | None, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Pass when no token is configured (loopback-only API) or the bearer token matches."""
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # Constant-time comparison: response timing must not reveal a token prefix.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CatalogError(Code.UNAUTHENTICATED, "missing or invalid bearer token")


async def admin_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    """Authorize a mutation and name who made it: ``admin@<client address>``."""
    check_token(request.app.state.admin_token, credentials)
    client = request.client.host if request.client else "unknown"
    return f"admin@{client}"


Actor = Annotated[str, Depends(admin_actor)]
