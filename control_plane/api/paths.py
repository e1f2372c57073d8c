"""Model roots: the only directories the admin API lets callers point the server at.

A caller with the token could otherwise make the server read (and copy) any directory it can see,
so registered base paths and imported versions must resolve (symlinks and ``..`` followed)
inside a root: a configured model's base path or a ``TFSGATE_MODEL_ROOTS`` entry. A path outside
is PERMISSION_DENIED (HTTP 403): the request is well formed but not allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from control_plane.catalog.errors import CatalogError
from tfsgate.core.status import Code


def resolve_within(path: str, roots: Iterable[Path]) -> Path:
    """``path`` resolved; INVALID_ARGUMENT if relative, PERMISSION_DENIED if outside ``roots``."""
    given = Path(path)
    if not given.is_absolute():
        raise CatalogError(Code.INVALID_ARGUMENT, f"path {path!r} must be absolute")
    resolved = given.resolve()
    allowed = [root.resolve() for root in roots]
    if any(resolved.is_relative_to(root) for root in allowed):
        return resolved
    shown = ", ".join(str(r) for r in allowed) or "none configured"
    raise CatalogError(
        Code.PERMISSION_DENIED,
        f"path {path!r} (resolved {resolved}) is outside the model roots ({shown}); "
        "add its directory to TFSGATE_MODEL_ROOTS",
    )


def require_directory(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise CatalogError(Code.FAILED_PRECONDITION, f"{what} {path} is not a directory")
    return path
