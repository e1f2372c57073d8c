"""The reconciler end to end over a real ``tfsgate serve`` and tritonserver: a text config.

Each test gets its own ``fleet``: models ``m1`` and ``m2`` (latest policy, version 1 answering
``answer(2.0)``), ``m2`` labelled ``stable``, SQLite, config file and base paths polled every second.
Tests bring the fleet into the state they need, so they pass alone and in any order.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from control_plane.catalog.entities import VersionState
from tests.support.reconcile import (
    Deployment,
    Hammer,
    add_broken_version,
    answer,
    assert_nothing_half_written,
    catalog_creates,
    catalog_labels,
    catalog_states,
    copy_saved_model,
    fail_a_version,
    failed_status,
    model_config_text,
    predict,
    prediction,
    status,
    write_config_text,
)
from tests.support.servers import ServerProcess, free_port, serve_command
from tests.support.waiting import wait_for

pytestmark = pytest.mark.triton  # starts tritonserver

# Broken versions fail at once here (TF Serving would retry a failed load 5 times, a minute
# apart: test_load_retries_e2e.py).
POLL = [
    "--model_config_file_poll_wait_seconds=1",
    "--file_system_poll_wait_seconds=1",
    "--max_num_load_retries=0",
]


@pytest.fixture
def fleet(templates: dict[float, Path], tmp_path: Path) -> Iterator[Deployment]:
    bases = {"m1": tmp_path / "models" / "m1", "m2": tmp_path / "models" / "m2"}
    for base in bases.values():
        base.mkdir(parents=True)
        shutil.copytree(templates[2.0], base / "1")
    config = tmp_path / "models.config"
    config.write_text(model_config_text(bases, {"m2": {"stable": 1}}))
    home = tmp_path / "home"
    deployment = Deployment(
        home, [f"--model_config_file={config}", *POLL], "m1", f"sqlite:///{home / 'catalog.db'}"
    )
    with deployment.serving():
        yield deployment


def running(fleet: Deployment) -> ServerProcess:
    assert fleet.server is not None
    return fleet.server


def models_dir(fleet: Deployment) -> Path:
    return fleet.home.parent / "models"


def config_path(fleet: Deployment) -> Path:
    return Path(fleet.args[0].split("=", 1)[1])


# -- start-up ----------------------------------------------------------------------------------
def test_unparseable_config_at_start_fails_as_tf_serving_does(tmp_path: Path) -> None:
    """protobuf's parse error on stderr (TF Serving's test greps it), then main()'s
    "Failed to start server" status on stdout, exit status 255 (main returns -1)."""
    config = tmp_path / "broken.config"
    config.write_text("model_config_list { config { name: 'm' base_path: ")
    command = serve_command(
        tmp_path / "home", [f"--model_config_file={config}"], free_port(), free_port()
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 255
    assert done.stdout == (
        f"Failed to start server. Error: INVALID_ARGUMENT: Invalid protobuf file: '{config}'\n"
    )
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig: 1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_text_config_serves_both_models(fleet: Deployment) -> None:
    server = running(fleet)
    for model in ("m1", "m2"):
        assert prediction(server, model) == answer(2.0)
        assert status(server, model) == {"1": ("AVAILABLE", "")}
    assert prediction(server, "m2/labels/stable") == answer(2.0)


# -- versions: swap, half-copied, broken -------------------------------------------------------
def test_half_copied_version_is_ignored_and_new_version_swaps_without_failures(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = running(fleet)
    base = models_dir(fleet) / "m1"
    # Version 3 is half-copied (variables, no saved_model.pb yet): never a candidate for latest.
    shutil.copytree(templates[4.0] / "variables", base / "3" / "variables")
    with Hammer(server, "m1") as hammer:
        wait_for(lambda: len(hammer.answers) > 5, 30, "the client to get answers")
        appeared = copy_saved_model(templates[3.0], base / "2")
        wait_for(lambda: hammer.first_answer(answer(3.0)), 120, "version 2 to answer")
        wait_for(
            lambda: status(server, "m1") == {"1": ("END", ""), "2": ("AVAILABLE", "")},
            60,
            "version 1 to end",
        )
        # Keep predicting a moment after the swap: nothing may still route to version 1.
        settled = len(hammer.answers)
        wait_for(lambda: len(hammer.answers) > settled + 20, 30, "answers after the swap")
    first = hammer.first_answer(answer(3.0))
    assert first is not None
    print(f"\nversion swap: new directory to first answer from it: {first - appeared:.2f}s")
    assert hammer.failures == []
    values = [y for _, y in hammer.answers]
    switch = values.index(answer(3.0))
    assert set(values[:switch]) == {answer(2.0)} and set(values[switch:]) == {answer(3.0)}
    assert "3" not in (status(server, "m1") or {})
    assert 3 not in catalog_states(fleet.catalog_url, "m1")
    assert_nothing_half_written(fleet, models_dir(fleet))


def test_broken_versions_fail_with_reason_while_previous_keeps_serving(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = running(fleet)
    base = models_dir(fleet) / "m1"
    with Hammer(server, "m1") as hammer:
        # Version 2: saved_model.pb is garbage, conversion fails.
        add_broken_version(base, 2, templates[4.0])
        states = failed_status(server, "m1", 2)
        assert states["2"][0] == "END" and states["1"] == ("AVAILABLE", "")
        # Version 3: a readable graph without its variables: TensorFlow fails at load.
        no_vars = fleet.home.parent / "no_vars"
        shutil.copytree(templates[4.0], no_vars)
        shutil.rmtree(no_vars / "variables")
        copy_saved_model(no_vars, base / "3")
        states = failed_status(server, "m1", 3)
        assert states["3"][0] == "END" and states["1"] == ("AVAILABLE", "")
    assert hammer.failures == []
    assert {y for _, y in hammer.answers} == {answer(2.0)}
    catalog = catalog_states(fleet.catalog_url, "m1")
    assert catalog[1][0] == VersionState.AVAILABLE
    for version in (2, 3):
        state, reason = catalog[version]
        assert state == VersionState.FAILED and reason, catalog
        assert states[str(version)][1] == reason
    print(f"\nversion 2 failed: {catalog[2][1][:200]}\nversion 3 failed: {catalog[3][1][:200]}")
    assert_nothing_half_written(fleet, models_dir(fleet))


# -- config edits --------------------------------------------------------------------------------
def test_broken_config_edit_is_ignored_and_label_rule_applies(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = running(fleet)
    fail_a_version(server, models_dir(fleet) / "m1", 2, templates[4.0])
    config = config_path(fleet)
    write_config_text(config, "model_config_list { config { name: 'm1' ")
    wait_for(lambda: "Failed to read ModelServerConfig file" in server.log(), 30, "the edit")
    for model in ("m1", "m2"):
        assert predict(server, model).status_code == 200
    # A valid edit: label stable on AVAILABLE version 1, canary on FAILED version 2 (refused:
    # this server runs without --allow_version_labels_for_unavailable_models).
    bases = {"m1": models_dir(fleet) / "m1", "m2": models_dir(fleet) / "m2"}
    labels = {"m1": {"stable": 1, "canary": 2}, "m2": {"stable": 1}}
    write_config_text(config, model_config_text(bases, labels))
    wait_for(lambda: prediction(server, "m1/labels/stable") == answer(2.0), 30, "label stable")
    response = predict(server, "m1/labels/canary")
    assert response.status_code == 400
    assert "Unrecognized servable version label: canary" in response.json()["error"]
    assert catalog_labels(fleet.catalog_url, "m1") == {"stable": 1}
    assert "label canary of m1 -> 2" in server.log()


def test_config_edit_removes_a_model_while_the_other_serves(fleet: Deployment) -> None:
    server = running(fleet)
    with Hammer(server, "m1") as hammer:
        wait_for(lambda: len(hammer.answers) > 5, 30, "the client to get answers")
        m1 = {"m1": models_dir(fleet) / "m1"}
        write_config_text(config_path(fleet), model_config_text(m1, {}))
        wait_for(lambda: predict(server, "m2").status_code == 404, 60, "m2 to go")
        settled = len(hammer.answers)
        wait_for(lambda: len(hammer.answers) > settled + 20, 30, "answers after the removal")
    assert hammer.failures == []
    assert {y for _, y in hammer.answers} == {answer(2.0)}
    assert status(server, "m2") is None
    ended = {1: (VersionState.END, "")}  # set once Triton has unloaded it, after the 404s
    wait_for(lambda: catalog_states(fleet.catalog_url, "m2") == ended, 30, "m2 version 1 END")
    triton = json.loads((server.home / "triton" / "endpoints.json").read_text())["http_url"]
    index = httpx.post(f"{triton}/v2/repository/index", json={"ready": True}, timeout=10).json()
    names = {m["name"] for m in index if m["version"] == "1"}
    assert names == {"m1", "m1__.unbatched"} and len(index) == 2  # m1's shared Triton models


# -- restarts ------------------------------------------------------------------------------------
def test_a_hung_triton_is_killed_and_restarted(fleet: Deployment) -> None:
    """Alive to the OS but answering nothing (SIGSTOP here; tritonserver 2.51 once hung in its
    SIGABRT handler after finding its heap corrupted): the supervisor's health probes miss, it
    kills the process group and starts a new Triton, and predictions are answered again."""
    server = running(fleet)
    endpoints = server.home / "triton" / "endpoints.json"
    old_pid = json.loads(endpoints.read_text())["pid"]
    os.kill(old_pid, signal.SIGSTOP)
    stopped = time.monotonic()
    wait_for(lambda: json.loads(endpoints.read_text())["pid"] != old_pid, 60, "a new Triton")
    wait_for(lambda: prediction(server, "m1") == answer(2.0), 120, "m1 to answer again")
    print(f"\ntriton SIGSTOP to first successful prediction: {time.monotonic() - stopped:.2f}s")
    assert f"tritonserver pid {old_pid} hung (3 health probes of 3 s unanswered)" in server.log()
    assert not Path(f"/proc/{old_pid}").exists()  # killed and reaped, not left stopped
    wait_for(lambda: prediction(server, "m2") == answer(2.0), 60, "m2 to answer again")


def test_triton_killed_is_restarted_and_serves_again(
    fleet: Deployment, templates: dict[float, Path]
) -> None:
    server = running(fleet)
    fail_a_version(server, models_dir(fleet) / "m1", 2, templates[4.0])
    endpoints = server.home / "triton" / "endpoints.json"
    old_pid = json.loads(endpoints.read_text())["pid"]
    os.kill(old_pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: prediction(server, "m1") == answer(2.0), 120, "m1 to answer again")
    recovered = time.monotonic() - killed
    wait_for(lambda: prediction(server, "m2") == answer(2.0), 60, "m2 to answer again")
    print(f"\ntriton kill -9 to first successful prediction: {recovered:.2f}s")
    assert json.loads(endpoints.read_text())["pid"] != old_pid
    assert "tritonserver exited (signal 9 (SIGKILL)); restarting it" in server.log()
    m1 = status(server, "m1") or {}
    # A FAILED version stays failed (with its reason) across the restart.
    assert {v: state for v, (state, _) in m1.items()} == {"1": "AVAILABLE", "2": "END"}
    assert m1["2"][1]
    # Triton answers as soon as the reload is done; the pass records AVAILABLE right after.
    available = {1: (VersionState.AVAILABLE, "")}
    wait_for(lambda: catalog_states(fleet.catalog_url, "m2") == available, 30, "m2 AVAILABLE")
    assert status(server, "m2") == {"1": ("AVAILABLE", "")}
    assert prediction(server, "m2/labels/stable") == answer(2.0)


def test_restart_keeps_state_without_reconverting(fleet: Deployment) -> None:
    server = running(fleet)
    before = {model: status(server, model) for model in ("m1", "m2")}
    labels = {model: catalog_labels(fleet.catalog_url, model) for model in ("m1", "m2")}
    assert labels["m2"] == {"stable": 1}
    runners = sorted(fleet.repository.glob("*/*/model.py"))
    mtimes = {path: path.stat().st_mtime_ns for path in runners}
    creates = catalog_creates(fleet.catalog_url)
    assert fleet.stop() == 0
    server = fleet.start()
    assert {model: status(server, model) for model in ("m1", "m2")} == before
    assert {model: catalog_labels(fleet.catalog_url, model) for model in ("m1", "m2")} == labels
    assert prediction(server, "m1") == answer(2.0)
    assert prediction(server, "m2/labels/stable") == answer(2.0)
    assert sorted(fleet.repository.glob("*/*/model.py")) == runners
    assert {path: path.stat().st_mtime_ns for path in runners} == mtimes
    assert catalog_creates(fleet.catalog_url) == creates
