"""Flags and environment -> ServeSettings (pure unit tests)."""

from __future__ import annotations

import pytest

from tfsgate.cli import main
from tfsgate.flags import parse_bool
from tfsgate.settings import ServeSettings


def test_tf_serving_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODEL_NAME", "MODEL_BASE_PATH", "TFSGATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    settings = ServeSettings()
    assert (settings.port, settings.rest_api_port, settings.model_name) == (8500, 8501, "default")
    assert settings.file_system_poll_wait_seconds == 1
    assert settings.home == "var"


def test_users_home_is_not_tfsgate_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.delenv("TFSGATE_HOME", raising=False)
    assert ServeSettings().home == "var"
    monkeypatch.setenv("TFSGATE_HOME", "/srv/tfsgate")
    assert ServeSettings().home == "/srv/tfsgate"


def test_docker_image_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_NAME", "resnet")
    monkeypatch.setenv("MODEL_BASE_PATH", "/models/resnet")
    settings = ServeSettings()
    assert (settings.model_name, settings.model_base_path) == ("resnet", "/models/resnet")
    assert ServeSettings(model_name="flag_wins").model_name == "flag_wins"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("false", False)])
def test_tf_style_booleans(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_unknown_flag_is_refused() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--no_such_flag=1"])
    assert caught.value.code == 255  # TF's flag-parse failure status
