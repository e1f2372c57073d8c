"""The status tables against what they copy: TF's codes, gRPC's codes, TF Serving's HTTP switch."""

from __future__ import annotations

import grpc
import pytest

from tfsgate.core import protos
from tfsgate.core.status import GRPC_STATUS, HTTP_STATUS, Code, ServingError, invalid_argument

# TF Serving's ToHTTPStatusCode (tensorflow_serving/model_servers/http_server.cc), written out
# from its source: the codes it names, and 500 for the ones that fall to its default branch.
TF_SERVING_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def _tf_codes() -> dict[str, int]:
    """TF's canonical codes from its own proto (``tensorflow/core/protobuf/error_codes.proto``)."""
    enum = protos.status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type
    return {v.name: v.number for v in enum.values if not v.name.startswith("DO_NOT_USE")}


def test_codes_are_tensorflows() -> None:
    assert {c.name: c.value for c in Code} == _tf_codes()


def test_http_table_is_tf_servings() -> None:
    assert {c.name: status for c, status in HTTP_STATUS.items()} == TF_SERVING_HTTP


def test_grpc_table_is_grpcs_own_codes() -> None:
    """gRPC's status codes are TF's canonical codes, number for number."""
    real = {s.name: s.value[0] for s in grpc.StatusCode}
    assert {c.name: s.value[0] for c, s in GRPC_STATUS.items()} == _tf_codes()
    assert all(real[c.name] == c.value for c in GRPC_STATUS)


@pytest.mark.parametrize("code", list(Code))
def test_error_uses_the_tables(code: Code) -> None:
    error = ServingError(code, "m")
    assert error.http_status == TF_SERVING_HTTP[code.name]
    assert error.grpc_status.name == code.name


def test_error_carries_code_and_message() -> None:
    err = invalid_argument("bad")
    assert (err.code, err.message) == (Code.INVALID_ARGUMENT, "bad")
    assert str(err) == "INVALID_ARGUMENT: bad"
    assert err.grpc_status is grpc.StatusCode.INVALID_ARGUMENT
    assert err == ServingError(Code.INVALID_ARGUMENT, "bad")
    assert err != ServingError(Code.NOT_FOUND, "bad")
