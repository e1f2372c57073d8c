"""Version discovery under real base paths."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from control_plane.sources.base_path import (
    SourceError,
    discover_versions,
    no_versions_message,
    parse_version,
)

MakeVersion = Callable[..., Path]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("123", 123),
        ("00000123", 123),
        (" 7\t", 7),  # safe_strto64 skips surrounding whitespace
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),  # int64 overflow
        ("-1", None),  # parses in TF Serving, but is no Triton version
        ("+1", None),
        ("123abc", None),
        ("1.5", None),
        ("tmp", None),
        (".123", None),
        ("", None),
        ("١٢", None),  # non-ASCII digits
    ],
)
def test_parse_version(name: str, expected: int | None) -> None:
    assert parse_version(name) == expected


def test_discover_versions_keeps_ready_numeric_dirs(
    tmp_path: Path, make_version: MakeVersion
) -> None:
    v123 = make_version("m", "00000123")
    v7 = make_version("m", "7", graph="saved_model.pbtxt")
    make_version("m", "124", ready=False)  # half-copied: no saved_model.pb yet
    make_version("m", "tmp")
    make_version("m", "125abc")
    make_version("m", ".126")
    (tmp_path / "m" / "127").write_text("a file, not a version directory")

    assert discover_versions(tmp_path / "m") == {123: v123, 7: v7}


def test_half_copied_version_appears_once_ready(tmp_path: Path, make_version: MakeVersion) -> None:
    make_version("m", "1")
    make_version("m", "2", ready=False)
    assert set(discover_versions(tmp_path / "m")) == {1}
    make_version("m", "2")
    assert set(discover_versions(tmp_path / "m")) == {1, 2}


def test_duplicate_version_dirs_last_sorted_name_wins(
    tmp_path: Path, make_version: MakeVersion, caplog: pytest.LogCaptureFixture
) -> None:
    make_version("m", "0123")
    plain = make_version("m", "123")
    with caplog.at_level(logging.WARNING):
        assert discover_versions(tmp_path / "m") == {123: plain}
    assert "Duplicate version directories detected" in caplog.text


def test_empty_base_path_has_no_versions(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    assert discover_versions(tmp_path / "m") == {}


def test_missing_base_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"base path .*/nope for servable m.*does not exist"):
        discover_versions(tmp_path / "nope", model_name="m")


def test_base_path_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(SourceError, match="not a directory"):
        discover_versions(tmp_path / "f")


def test_no_versions_message_matches_tf_serving() -> None:
    assert (
        no_versions_message("half_plus_two", "/models/half_plus_two")
        == "No versions of servable half_plus_two found under base path /models/half_plus_two"
    )
