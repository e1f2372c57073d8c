"""Running a role: until SIGTERM/SIGINT, start-up failures reported as TF Serving reports them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from control_plane.catalog.errors import CatalogError
from control_plane.sources.base_path import SourceError
from control_plane.triton.embedded import TritonStartError
from tfsgate.core.status import Code
from tfsgate.startup import StartupError, report_failure


def run(main: Callable[[], Awaitable[int]]) -> int:
    """The role's exit status; a start-up failure is TF Serving's "Failed to start server" line
    and exit status 255."""
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except StartupError as exc:
        return report_failure(exc)
    except CatalogError as exc:
        return report_failure(StartupError(exc.message, exc.code))
    except (SourceError, TritonStartError) as exc:
        return report_failure(StartupError(str(exc), Code.FAILED_PRECONDITION))
