"""The one status type: TF's canonical codes, ``ServingError``, and the HTTP and gRPC tables.

Every failure tfsgate reports (data plane, catalog, admin API) is a :class:`ServingError` carrying
one of TF's canonical status codes, so the REST layer, the gRPC layer and the admin API each map it
once (TF Serving does the same: one ``ToHTTPStatusCode`` switch in its HTTP server, and the gRPC
status is the TF code itself).
"""

from __future__ import annotations

import enum

import grpc


class Code(enum.IntEnum):
    """TF's canonical status codes (``tensorflow/core/protobuf/error_codes.proto``), same values."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc), entry for entry.
HTTP_STATUS: dict[Code, int] = {
    Code.OK: 200,
    Code.CANCELLED: 499,  # CLIENT_CLOSED_REQUEST
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# gRPC uses the same canonical codes; the table makes the mapping explicit and checkable.
GRPC_STATUS: dict[Code, grpc.StatusCode] = {code: grpc.StatusCode[code.name] for code in Code}


class ServingError(Exception):
    """A failure with a TF status code; ``message`` is what clients see (``{"error": message}``)."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def grpc_status(self) -> grpc.StatusCode:
        return GRPC_STATUS[self.code]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r})"

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServingError):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)
