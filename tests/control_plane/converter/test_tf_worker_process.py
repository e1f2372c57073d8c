"""The TensorFlow worker as a process, driven by ``WorkerClient`` the way stubs drive it (no Triton):
one worker per owner however many models, versions and clients start at once, TF1 sessions fed by
tensor names, errors with TF status names, sessions closed when unused, idle exit, exit with its
owner, restart after a crash."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.procs import open_sockets
from tests.support.tf_example import example
from tests.support.waiting import wait_until
from tfsgate.runtime import tf_worker
from tfsgate.runtime.tf_worker import WorkerClient, WorkerError

pytestmark = pytest.mark.process  # starts TensorFlow worker processes

WORKER_FILE = str(Path(tf_worker.__file__))

MakeClient = Callable[..., WorkerClient]


def worker_pids(socket_path: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and WORKER_FILE.encode() in cmdline and socket_path.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    """Stands in for Triton: the worker watches this process."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def make_client(
    saved_models: dict[str, Path], owner: subprocess.Popen[bytes]
) -> Iterator[MakeClient]:
    directory = tempfile.mkdtemp(prefix="tfw-test-")  # short: a real socket file, not abstract
    clients: list[WorkerClient] = []

    def make(signature: str = "serving_default", **overrides: object) -> WorkerClient:
        options: dict[str, object] = {
            "saved_model": str(saved_models["half_plus_two"]),
            "signature": signature,
            "worker_file": WORKER_FILE,
            "fingerprint": "test",
            "owner_pid": owner.pid,
            "python": sys.executable,
            "directory": directory,
            "idle_seconds": 1.0,
        }
        options.update(overrides)
        client = WorkerClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    for client in clients:
        wait_until(lambda c=client: not worker_pids(c.socket_path), 10)  # type: ignore[misc]
    shutil.rmtree(directory, ignore_errors=True)


def test_signatures_share_one_worker(make_client: MakeClient) -> None:
    predict = make_client("serving_default")
    regress = make_client("regress_x_to_y")
    predict.connect()
    regress.connect()
    assert predict.socket_path == regress.socket_path
    assert len(worker_pids(predict.socket_path)) == 1
    assert predict.outputs == ["y"]
    y = predict.run({"x": np.array([[1.0], [2.0], [5.0]], np.float32)})["y"]
    np.testing.assert_array_equal(y, [[2.5], [3.0], [4.5]])
    inputs = np.array([example(x=2.0)], dtype=object)
    np.testing.assert_array_equal(regress.run({"inputs": inputs})["outputs"], [[3.0]])


def test_the_worker_runs_without_keras(make_client: MakeClient) -> None:
    """TensorFlow in the worker comes without the Keras import of its ``__init__`` (and the
    scikit-learn and matplotlib Keras brings: ~100 MB of RSS), and TF1 sessions still serve:
    no shared object of theirs is mapped in the serving worker (SciPy's top package is
    TensorFlow's own import)."""
    client = make_client("serving_default")
    client.connect()
    y = client.run({"x": np.array([[1.0]], np.float32)})["y"]
    np.testing.assert_array_equal(y, [[2.5]])
    (pid,) = worker_pids(client.socket_path)
    mapped = Path(f"/proc/{pid}/maps").read_text()
    assert "_pywrap_tensorflow" in mapped  # shared objects show here: the check below can see
    for package in ("/sklearn/", "/matplotlib/"):
        assert package not in mapped, package


def test_concurrent_starts_make_one_worker(make_client: MakeClient) -> None:
    signatures = ["serving_default", "regress_x_to_y", "classify_x_to_y", "regress_x_to_y2"]
    clients = [make_client(s) for s in signatures * 2]
    errors: list[BaseException] = []

    def connect(client: WorkerClient) -> None:
        try:
            client.connect()
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=connect, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert len(worker_pids(clients[0].socket_path)) == 1


def test_requested_outputs_only(make_client: MakeClient) -> None:
    client = make_client()
    client.connect()
    assert list(client.run({"x": np.ones((1, 1), np.float32)}, ["y"])) == ["y"]


def test_tensorflow_errors_carry_their_status(make_client: MakeClient) -> None:
    client = make_client("regress_x_to_y")
    with pytest.raises(WorkerError) as caught:
        client.run({"inputs": np.array([b"garbage"], dtype=object)})
    assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(WorkerError) as caught:
        client.run({"wrong_name": np.array([b""], dtype=object)})
    assert caught.value.code == "INVALID_ARGUMENT"
    # The connection is still good after an error.
    inputs = np.array([example(x=4.0)], dtype=object)
    np.testing.assert_array_equal(client.run({"inputs": inputs})["outputs"], [[4.0]])


def test_unknown_signature_fails_connect(make_client: MakeClient) -> None:
    with pytest.raises(WorkerError) as caught:
        make_client("no_such_signature").connect()
    assert caught.value.code == "NOT_FOUND"


def test_unloadable_saved_model_fails_connect(make_client: MakeClient, tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(WorkerError) as caught:
        make_client(saved_model=str(tmp_path)).connect()
    assert caught.value.code == "UNAVAILABLE"
    assert str(tmp_path) in caught.value.message


def test_worker_exits_when_idle_and_cleans_up(make_client: MakeClient) -> None:
    first, second = make_client(), make_client("regress_x_to_y")
    first.connect()
    second.connect()
    (pid,) = worker_pids(first.socket_path)
    held = open_sockets(pid)
    first.close()
    # The worker has seen the first stub go; the second still holds it (its idle clock stays at
    # zero meanwhile: test_idle_clock_runs_only_with_no_stub_connected) and still answers.
    assert wait_until(lambda: open_sockets(pid) == held - 1, 10)
    y = second.run({"inputs": np.array([example(x=2.0)], dtype=object)})["outputs"]
    np.testing.assert_array_equal(y, [[3.0]])
    assert worker_pids(first.socket_path) == [pid]
    second.close()
    assert wait_until(lambda: not worker_pids(first.socket_path), 10)
    assert not os.path.exists(first.socket_path)
    assert not os.path.exists(first.lock_path)
    # The next client starts a fresh worker.
    third = make_client()
    third.run({"x": np.ones((1, 1), np.float32)})
    assert worker_pids(third.socket_path) not in ([], [pid])


def test_worker_exits_with_its_owner(
    make_client: MakeClient, owner: subprocess.Popen[bytes]
) -> None:
    client = make_client()
    client.connect()
    assert len(worker_pids(client.socket_path)) == 1
    owner.kill()
    owner.wait()
    assert wait_until(lambda: not worker_pids(client.socket_path), 5)


def test_killed_worker_is_restarted_by_the_next_call(make_client: MakeClient) -> None:
    client = make_client()
    client.connect()
    (pid,) = worker_pids(client.socket_path)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not worker_pids(client.socket_path), 5)
    y = client.run({"x": np.array([[2.0]], np.float32)})["y"]
    np.testing.assert_array_equal(y, [[3.0]])
    assert len(worker_pids(client.socket_path)) == 1


def test_models_and_versions_share_one_worker(
    make_client: MakeClient, saved_models: dict[str, Path]
) -> None:
    """TF Serving's single process: every TensorFlow-served version in one worker."""
    clients = [
        make_client(),
        make_client("serving_default", saved_model=str(saved_models["multi_io"])),
        make_client("tensorflow/serving/regress", saved_model=str(saved_models["legacy_tf1"])),
        make_client("serving_default", fingerprint="another version"),
    ]
    for client in clients:
        client.connect()
    assert len(worker_pids(clients[0].socket_path)) == 1
    tag = np.array([[b"abc"]], dtype=object)
    ones = np.ones((1, 2), np.float32)
    out = clients[1].run({"a": ones, "b": ones, "tag": tag.reshape(1)})
    assert out["tag_length"].tolist() == [3]
    # TF 1.0 habits: a scalar examples placeholder fed a vector (TF Serving does not check).
    rows = np.array([example(x=1.0), example(x=4.0)], dtype=object)
    np.testing.assert_array_equal(clients[2].run({"inputs": rows})["outputs"], [[3.5], [5.0]])
    np.testing.assert_array_equal(clients[3].run({"x": np.ones((1, 1), np.float32)})["y"], [[2.5]])


def test_parse_errors_are_tensorflows_texts(make_client: MakeClient) -> None:
    client = make_client("regress_x_to_y")
    with pytest.raises(WorkerError) as caught:
        client.run({"inputs": np.array([example(y=1.0)], dtype=object)})
    assert caught.value.code == "INVALID_ARGUMENT"
    assert caught.value.message.startswith(
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found."
    )
    assert "Graph execution error" not in caught.value.message


def test_rows_run_in_chunks(make_client: MakeClient) -> None:
    client = make_client()
    x = np.arange(1000, dtype=np.float32).reshape(-1, 1)
    np.testing.assert_array_equal(client.run({"x": x}, chunk=128)["y"], 0.5 * x + 2)


def test_unused_version_is_closed(
    make_client: MakeClient, capfd: pytest.CaptureFixture[str]
) -> None:
    keep, leave = make_client(), make_client(fingerprint="leaving")
    keep.connect()
    leave.connect()
    leave.close()
    assert wait_until(lambda: "no stub uses it" in capfd.readouterr().err, 10)
    np.testing.assert_array_equal(keep.run({"x": np.ones((1, 1), np.float32)})["y"], [[2.5]])


def test_threads_reach_the_worker(make_client: MakeClient) -> None:
    client = make_client(threads=(1, 2))
    client.connect()
    (pid,) = worker_pids(client.socket_path)
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--intra_op_threads") + 1] == b"1"
    assert argv[argv.index(b"--inter_op_threads") + 1] == b"2"
