"""Version policy selection, with TF Serving's semantics."""

from __future__ import annotations

import pytest

from control_plane.sources.version_policy import (
    All,
    Latest,
    Specific,
    VersionPolicy,
    describe_policy,
    missing_specific_versions,
    policy_from_proto,
    select_versions,
)
from tfsgate.protos import model_server_config_pb2


@pytest.mark.parametrize(
    ("policy", "available", "expected"),
    [
        (Latest(), [1, 2, 3], {3}),
        (Latest(2), [3, 1, 2], {2, 3}),
        (Latest(5), [1, 2], {1, 2}),
        (Latest(), [], set()),
        (Latest(1), [9, 10, 100], {100}),  # by number, not by name order
        (All(), [1, 7, 3], {1, 3, 7}),
        (All(), [], set()),
        (Specific(frozenset({1, 3})), [1, 2, 3], {1, 3}),
        (Specific(frozenset({1, 4})), [1, 2, 3], {1}),
        (Specific(frozenset()), [1, 2], set()),
    ],
)
def test_select_versions(policy: VersionPolicy, available: list[int], expected: set[int]) -> None:
    assert select_versions(policy, available) == frozenset(expected)


def test_latest_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Latest(0)


def _proto_policy(text: str) -> VersionPolicy:
    from google.protobuf import text_format

    config = model_server_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    return policy_from_proto(config.model_version_policy)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Latest(1)),
        ("model_version_policy { latest { num_versions: 3 } }", Latest(3)),
        ("model_version_policy { latest { num_versions: 0 } }", Latest(1)),  # max(n, 1)
        ("model_version_policy { latest {} }", Latest(1)),
        ("model_version_policy { all {} }", All()),
        (
            "model_version_policy { specific { versions: 1 versions: 42 } }",
            Specific(frozenset({1, 42})),
        ),
    ],
)
def test_policy_from_proto(text: str, expected: VersionPolicy) -> None:
    assert _proto_policy(text) == expected


@pytest.mark.parametrize(
    ("policy", "available", "missing"),
    [
        (Specific(frozenset({1, 4})), [1, 2], {4}),
        (Specific(frozenset({1})), [1], set()),
        (Latest(3), [], set()),
        (All(), [], set()),
    ],
)
def test_missing_specific_versions(
    policy: VersionPolicy, available: list[int], missing: set[int]
) -> None:
    assert missing_specific_versions(policy, available) == frozenset(missing)


@pytest.mark.parametrize(
    ("policy", "text"),
    [(Latest(2), "latest(2)"), (All(), "all"), (Specific(frozenset({3, 1})), "specific(1,3)")],
)
def test_describe_policy(policy: VersionPolicy, text: str) -> None:
    assert describe_policy(policy) == text
