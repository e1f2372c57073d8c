"""Version policy parsing: the proto-JSON shapes TF Serving config files produce."""

from __future__ import annotations

import pytest

from control_plane.catalog import CatalogError, StatusCode, VersionPolicy


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"latest": {"num_versions": 2}}, VersionPolicy.latest(2)),
        ({"latest": {"numVersions": 3}}, VersionPolicy.latest(3)),
        ({"latest": {}}, VersionPolicy.latest(1)),
        ({"all": {}}, VersionPolicy.all()),
        ({"specific": {"versions": ["3", 1, 1]}}, VersionPolicy.specific([1, 3])),
        ('{"all": {}}', VersionPolicy.all()),
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
        "not json",
    ],
)
def test_parse_rejects(raw: object) -> None:
    with pytest.raises(CatalogError) as exc_info:
        VersionPolicy.parse(raw)  # type: ignore[arg-type]
    assert exc_info.value.code == StatusCode.INVALID_ARGUMENT
