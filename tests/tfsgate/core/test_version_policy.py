"""The one version policy: TF Serving's selection, its proto and proto-JSON spellings."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from tfsgate.core.protos import model_server_config_pb2
from tfsgate.core.status import Code, ServingError
from tfsgate.core.version_policy import VersionPolicy

latest, all_, specific = VersionPolicy.latest, VersionPolicy.all, VersionPolicy.specific


@pytest.mark.parametrize(
    ("policy", "available", "expected"),
    [
        (latest(), [1, 2, 3], {3}),
        (latest(2), [3, 1, 2], {2, 3}),
        (latest(5), [1, 2], {1, 2}),
        (latest(), [], set()),
        (latest(1), [9, 10, 100], {100}),  # by number, not by name order
        (all_(), [1, 7, 3], {1, 3, 7}),
        (all_(), [], set()),
        (specific({1, 3}), [1, 2, 3], {1, 3}),
        (specific({1, 4}), [1, 2, 3], {1}),
        (specific(()), [1, 2], set()),
    ],
)
def test_select(policy: VersionPolicy, available: list[int], expected: set[int]) -> None:
    assert policy.select(available) == frozenset(expected)


def test_latest_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        latest(0)


def _proto_policy(text: str) -> VersionPolicy:
    config = model_server_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return VersionPolicy.from_proto(config.model_version_policy)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", latest(1)),
        ("model_version_policy { latest { num_versions: 3 } }", latest(3)),
        ("model_version_policy { latest { num_versions: 0 } }", latest(1)),  # max(n, 1)
        ("model_version_policy { latest {} }", latest(1)),
        ("model_version_policy { all {} }", all_()),
        ("model_version_policy { specific { versions: 42 versions: 1 } }", specific({1, 42})),
    ],
)
def test_from_proto(text: str, expected: VersionPolicy) -> None:
    assert _proto_policy(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"latest": {"num_versions": 2}}, latest(2)),
        ({"latest": {"numVersions": 3}}, latest(3)),
        ({"latest": {}}, latest(1)),
        ({"all": {}}, all_()),
        ({"specific": {"versions": ["3", 1, 1]}}, specific([1, 3])),
        ('{"all": {}}', all_()),
        (specific([2]), specific([2])),
    ],
)
def test_parse(raw: object, expected: VersionPolicy) -> None:
    parsed = VersionPolicy.parse(raw)  # type: ignore[arg-type]
    assert parsed == expected
    assert VersionPolicy.parse(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"latest": {"num_versions": True}},
        {"latest": 1},
        {"all": {}, "latest": {}},
        {"specific": {"versions": ["x"]}},
        {"specific": {"versions": []}},
        specific(()),
        "not json",
    ],
)
def test_parse_rejects(raw: object) -> None:
    with pytest.raises(ServingError) as exc_info:
        VersionPolicy.parse(raw)  # type: ignore[arg-type]
    assert exc_info.value.code == Code.INVALID_ARGUMENT
