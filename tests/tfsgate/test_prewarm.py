"""The export child started ahead of a fresh start-up (``tfsgate.prewarm``): when it is, that the
first conversion runs in that very child, and that a restart starts none. The embedded Triton
started ahead too: the server's control plane takes that very process over."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from control_plane.converter.exporter import ExportOptions
from tests.support.procs import pids_mentioning
from tests.support.servers import start_server
from tfsgate.prewarm import started_exporter, started_triton
from tfsgate.settings import ServeSettings

CHILD = "control_plane.converter.export --serve"


def settings(home: Path, **flags: object) -> ServeSettings:
    return ServeSettings(home=str(home), model_repository=str(home / "repo"), **flags)


@pytest.mark.parametrize(
    "flags",
    [
        {},  # nothing to serve yet (models come through the admin API later)
        {"model_base_path": "/models/m", "runner": "tensorflow"},  # nothing to convert
        {"model_base_path": "/models/m", "prefer_tflite_model": True},
    ],
)
def test_no_child_when_nothing_will_convert(tmp_path: Path, flags: dict[str, object]) -> None:
    assert started_exporter(settings(tmp_path, **flags)) is None


def test_no_child_when_the_repository_holds_models(tmp_path: Path) -> None:
    (tmp_path / "repo" / "m__serving_default" / "1").mkdir(parents=True)
    assert started_exporter(settings(tmp_path, model_base_path="/models/m")) is None


@pytest.mark.tensorflow
def test_the_started_child_runs_the_first_export(half_plus_two: Path, tmp_path: Path) -> None:
    (tmp_path / "repo" / ".staging").mkdir(parents=True)  # hidden entries are not models
    exporter = started_exporter(settings(tmp_path, model_config_file="/models.config"))
    assert exporter is not None
    try:
        child = exporter._child
        assert child is not None and child.poll() is None
        version = next(half_plus_two.iterdir())
        result = exporter.export_version(version, tmp_path / "out", ExportOptions())
        assert exporter._child is child  # the same process did the job
        assert result.signatures["serving_default"].runner == "onnxruntime"
        verdict = json.loads((tmp_path / "out" / "verdict.json").read_text())
        assert set(verdict["signatures"]) == set(result.signatures)
    finally:
        exporter.close()
    assert child.poll() is not None


@pytest.mark.triton
def test_a_restart_starts_no_export_child(half_plus_two: Path, tmp_path: Path) -> None:
    args = ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    home = tmp_path / "home"
    with start_server(home, args):
        pass  # converted: the repository now holds the model
    before = pids_mentioning(CHILD)
    with start_server(home, args) as server:
        body = {"instances": [1.0]}
        url = f"{server.rest_url}/v1/models/half_plus_two:predict"
        assert httpx.post(url, json=body, timeout=30).json() == {"predictions": [2.5]}
        children = pids_mentioning(CHILD) - before
        assert not children, "a restart with converted models started an export child"


def test_no_triton_ahead_when_the_flags_name_tritons(tmp_path: Path) -> None:
    flags = {"model_base_path": "/models/m", "triton_url": "triton:8001"}
    assert started_triton(settings(tmp_path, **flags)) is None
    assert not (tmp_path / "logs").exists()


@pytest.mark.triton
def test_the_triton_started_ahead_is_the_one_that_serves(
    half_plus_two: Path, tmp_path: Path
) -> None:
    args = ["--model_name=half_plus_two", f"--model_base_path={half_plus_two}"]
    home = tmp_path / "home"
    with start_server(home, args) as server:
        endpoints = json.loads((home / "triton" / "endpoints.json").read_text())
        url = f"{server.rest_url}/v1/models/half_plus_two:predict"
        assert httpx.post(url, json={"instances": [1.0]}, timeout=30).json() == {
            "predictions": [2.5]
        }
        # One Triton for this home: the one spawned ahead, then waited for and used.
        tritons = pids_mentioning(f"tritonserver --model-repository={home.resolve()}")
        assert tritons == {endpoints["pid"]}
        log = (home / "logs" / "triton.log").read_text()
        assert log.count("Started GRPCInferenceService") == 1
