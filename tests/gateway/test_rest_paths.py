"""TF Serving's REST path grammar (pure unit tests of ``gateway.rest.parse_path``)."""

from __future__ import annotations

import pytest

from gateway.rest import parse_path
from gateway.types import ModelRef
from tfsgate.core.status import Code, ServingError


@pytest.mark.parametrize(
    ("method", "path", "ref", "verb"),
    [
        ("POST", "/v1/models/m:predict", ModelRef("m"), "predict"),
        ("POST", "/v1/models/m/versions/00012:classify", ModelRef("m", version=12), "classify"),
        ("POST", "/v1/models/m/labels/canary:regress", ModelRef("m", label="canary"), "regress"),
        (
            "POST",
            "/v1/models/my%20model/labels/a%2Bb:predict",
            ModelRef("my model", label="a+b"),
            "predict",
        ),
        ("POST", "/V1/MODELS/m:PREDICT", ModelRef("m"), "predict"),
        ("GET", "/v1/models/m", ModelRef("m"), "status"),
        ("GET", "/v1/models/m/versions/3", ModelRef("m", version=3), "status"),
        ("GET", "/v1/models/m/labels/stable/metadata", ModelRef("m", label="stable"), "metadata"),
    ],
)
def test_parse(method: str, path: str, ref: ModelRef, verb: str) -> None:
    parsed = parse_path(method, path)
    assert (parsed.ref, parsed.verb) == (ref, verb)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/models/m:explain"),
        ("PUT", "/v1/models/m:predict"),
        ("GET", "/v1/models/m/versions/-1"),
        ("GET", "/v1/models/m/versions/1/labels/x"),
    ],
)
def test_malformed(method: str, path: str) -> None:
    with pytest.raises(ServingError) as caught:
        parse_path(method, path)
    assert caught.value.code == Code.INVALID_ARGUMENT
    assert caught.value.message == f"Malformed request: {method} {path}"


def test_parsed_paths_are_remembered_within_a_bound() -> None:
    """A path asked again is the same immutable answer; the memo of paths clients send stays
    bounded however many distinct ones come, and a malformed path is never remembered."""
    from gateway import rest

    first = parse_path("POST", "/v1/models/m:predict")
    assert parse_path("POST", "/v1/models/m:predict") is first
    assert parse_path("GET", "/v1/models/m:predict".replace(":predict", "")) is not first
    for index in range(3 * rest._PARSED_ENTRIES):
        assert parse_path("POST", f"/v1/models/m{index}:predict").ref.name == f"m{index}"
        assert len(rest._PARSED) <= rest._PARSED_ENTRIES
    with pytest.raises(ServingError):
        parse_path("POST", "/v1/models/m:explain")
    assert ("POST", "/v1/models/m:explain") not in rest._PARSED
