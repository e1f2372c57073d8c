"""``tfsgate models|versions|promote|rollback|label`` against a live admin server."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from tests.support.admin import MODEL, TOKEN, AdminEnv
from tfsgate.admin_cli import add_admin_parsers, format_table, run_admin


def run(env: AdminEnv, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tfsgate")
    subparsers: Any = parser.add_subparsers(dest="command", required=True)
    add_admin_parsers(subparsers)
    return run_admin(parser.parse_args([*argv, "--admin_url", env.url]))


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFSGATE_ADMIN_TOKEN", TOKEN)


def test_promote_label_rollback_and_listings(
    sqlite_admin: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(sqlite_admin, "promote", MODEL, "1") == 0
    assert run(sqlite_admin, "promote", MODEL, "2") == 0
    assert run(sqlite_admin, "label", MODEL, "canary", "1") == 0
    assert run(sqlite_admin, "rollback", MODEL) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{MODEL}: stable - -> 1",
        f"{MODEL}: stable 1 -> 2",
        f"{MODEL}: label canary -> 1",
        f"{MODEL}: stable 2 -> 1",
    ]
    assert run(sqlite_admin, "models") == 0
    assert capsys.readouterr().out.splitlines() == [
        "MODEL          SOURCE  STABLE  LABELS             VERSIONS",
        f"{MODEL}  config  1       canary=1,stable=1  1:AVAILABLE 2:AVAILABLE",
    ]
    assert run(sqlite_admin, "versions", MODEL) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    signatures = [
        "classify_x_to_y",
        "regress_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
        "serving_default",
    ]
    # The runner and why, per signature (start_admin serves MODEL with the TensorFlow runner).
    reason = ["the", "model's", "runner", "setting", "is", "tensorflow"]
    runners = [[s, "tensorflow", *reason] for s in signatures]
    assert rows == [
        ["VERSION", "STATE", "PIN", "LABELS", "REASON"],
        ["1", "AVAILABLE", "-", "canary,stable", "-"],
        *runners,
        ["2", "AVAILABLE", "-", "-", "-"],
        *runners,
    ]


def test_errors_exit_non_zero_with_the_servers_message(
    sqlite_admin: AdminEnv, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(sqlite_admin, "rollback", MODEL) == 1
    assert "400 model 'half_plus_two' has no previous stable" in capsys.readouterr().err
    assert run(sqlite_admin, "versions", "nope") == 1
    assert capsys.readouterr().err == "tfsgate versions: 404 model 'nope' not found\n"
    monkeypatch.setenv("TFSGATE_ADMIN_TOKEN", "wrong")
    assert run(sqlite_admin, "promote", MODEL, "1") == 1
    assert "401 missing or invalid bearer token" in capsys.readouterr().err


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="tfsgate")
    subparsers: Any = parser.add_subparsers(dest="command", required=True)
    add_admin_parsers(subparsers)
    args = parser.parse_args(["models", "--admin_url", "http://127.0.0.1:9", "--timeout", "2"])
    assert run_admin(args) == 1
    assert "cannot reach the admin API at http://127.0.0.1:9" in capsys.readouterr().err


def test_format_table() -> None:
    assert format_table(["A", "BB"], []) == "(none)"
    assert format_table(["A", "BB"], [["long", "x"]]) == "A     BB\nlong  x"


def test_rollout_thresholds_show_and_change_only_the_flags_given(
    sqlite_admin: AdminEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(sqlite_admin, "rollout", "thresholds", MODEL) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"{MODEL}: rollout thresholds"
    assert "window_seconds            60" in shown
    assert "quality_metric            -" in shown
    argv = ["--window", "2m", "--max_p99_ratio", "1.2", "--quality_metric", "auc_roc"]
    assert run(sqlite_admin, "rollout", "thresholds", MODEL, *argv) == 0
    changed = capsys.readouterr().out
    assert "window_seconds            120" in changed and "max_p99_ratio             1.2" in changed
    stored = sqlite_admin.store.rollouts.get_thresholds(MODEL)
    assert stored["window_seconds"] == 120.0 and stored["quality_metric"] == "auc_roc"
    assert stored["min_requests"] == 20  # not given: kept
    assert run(sqlite_admin, "rollout", "thresholds", MODEL, "--quality_metric", "none") == 0
    capsys.readouterr()
    assert sqlite_admin.store.rollouts.get_thresholds(MODEL)["quality_metric"] is None
    assert run(sqlite_admin, "rollout", "thresholds", MODEL, "--min_requests", "many") == 1
    assert "--min_requests must be an integer, got 'many'" in capsys.readouterr().err
    assert run(sqlite_admin, "rollout", "thresholds", MODEL, "--max_p99_ratio", "-1") == 1
    assert "400" in capsys.readouterr().err
