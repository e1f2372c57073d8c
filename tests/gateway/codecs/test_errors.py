"""The status tables: every code maps to HTTP and gRPC, with TF Serving's HTTP choices."""

from __future__ import annotations

import grpc
import pytest

from gateway import errors
from gateway.errors import GRPC_STATUS, HTTP_STATUS, Code, ServingError


def test_every_code_has_an_http_and_a_grpc_status() -> None:
    assert set(HTTP_STATUS) == set(Code)
    assert set(GRPC_STATUS) == set(Code)


@pytest.mark.parametrize(
    ("code", "http"),
    [
        (Code.OK, 200),
        (Code.CANCELLED, 499),
        (Code.UNKNOWN, 500),
        (Code.INVALID_ARGUMENT, 400),
        (Code.DEADLINE_EXCEEDED, 504),
        (Code.NOT_FOUND, 404),
        (Code.ALREADY_EXISTS, 409),
        (Code.PERMISSION_DENIED, 403),
        (Code.RESOURCE_EXHAUSTED, 429),
        (Code.FAILED_PRECONDITION, 400),
        (Code.ABORTED, 409),
        (Code.OUT_OF_RANGE, 400),
        (Code.UNIMPLEMENTED, 501),
        (Code.INTERNAL, 500),
        (Code.UNAVAILABLE, 503),
        (Code.DATA_LOSS, 500),
        (Code.UNAUTHENTICATED, 401),
    ],
)
def test_http_status_matches_tf_serving(code: Code, http: int) -> None:
    assert HTTP_STATUS[code] == http
    assert ServingError(code, "m").http_status == http


@pytest.mark.parametrize("code", list(Code))
def test_grpc_status_has_the_same_name_and_number(code: Code) -> None:
    status = GRPC_STATUS[code]
    assert status.name == code.name
    assert status.value[0] == code.value


def test_error_carries_code_and_message() -> None:
    err = errors.invalid_argument("bad")
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, "bad")
    assert str(err) == "INVALID_ARGUMENT: bad"
    assert err.grpc_status is grpc.StatusCode.INVALID_ARGUMENT
    assert err == ServingError(Code.INVALID_ARGUMENT, "bad")
    assert err != errors.not_found("bad")


@pytest.mark.parametrize(
    ("helper", "code"),
    [
        (errors.invalid_argument, Code.INVALID_ARGUMENT),
        (errors.not_found, Code.NOT_FOUND),
        (errors.failed_precondition, Code.FAILED_PRECONDITION),
        (errors.unimplemented, Code.UNIMPLEMENTED),
        (errors.unavailable, Code.UNAVAILABLE),
        (errors.internal, Code.INTERNAL),
        (errors.deadline_exceeded, Code.DEADLINE_EXCEEDED),
        (errors.already_exists, Code.ALREADY_EXISTS),
        (errors.resource_exhausted, Code.RESOURCE_EXHAUSTED),
    ],
)
def test_helpers(helper, code: Code) -> None:  # type: ignore[no-untyped-def]
    assert helper("x").code is code
