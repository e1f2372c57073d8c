"""The catalog's error: a :class:`ServingError` raised by the store, with TF's status codes.

A subclass only so callers can tell a catalog failure from others; codes and their HTTP and gRPC
statuses are the one table of ``tfsgate.core.status``.
"""

from __future__ import annotations

from tfsgate.core.status import ServingError


class CatalogError(ServingError):
    """A catalog failure with a TF status code and a human-readable message."""
