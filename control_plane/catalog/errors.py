"""The catalog's one error type.

Codes are TensorFlow's canonical status names as plain strings, so the gateway can map them to
HTTP and gRPC with its own table (and later unify with its error type) without importing this
package's enum.
"""

from __future__ import annotations

from enum import StrEnum


class StatusCode(StrEnum):
    """TensorFlow canonical status codes (tensorflow/core/protobuf/error_codes.proto) we use."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"


class CatalogError(Exception):
    """A catalog failure with a TF status code (a plain string) and a human-readable message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code: str = str(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"CatalogError({self.code!r}, {self.message!r})"
