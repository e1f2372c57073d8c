"""The stub <-> TensorFlow worker wire format, the worker's socket naming and the starters' lock."""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tfsgate.runtime import tf_worker
from tfsgate.runtime.tf_worker import (
    ConnectionClosed,
    ProtocolError,
    decode_arrays,
    encode_arrays,
    recv_message,
    send_message,
)

RAW_DTYPES = [
    "?",
    "i1",
    "i2",
    "i4",
    "i8",
    "u1",
    "u2",
    "u4",
    "u8",
    "f2",
    "f4",
    "f8",
    "c8",
    "c16",
    ">f4",
    ">i8",
    "S3",
    "U2",
]


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield left, right
    left.close()
    right.close()


def sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    values = np.arange(int(np.prod(shape)) or 0) % 3
    return values.astype(np.dtype(dtype)).reshape(shape)


def round_trip(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    specs, buffers = encode_arrays(arrays)
    payload = memoryview(b"".join(bytes(b) for b in buffers))
    return decode_arrays(json.loads(json.dumps(specs)), payload)


@pytest.mark.parametrize("dtype", RAW_DTYPES)
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (0, 5), (2, 1, 2)])
def test_raw_dtypes_round_trip(dtype: str, shape: tuple[int, ...]) -> None:
    array = sample(dtype, shape)
    back = round_trip({"t": array})["t"]
    assert back.dtype == array.dtype
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_objects_round_trip_as_bytes() -> None:
    array = np.array([[b"a", b""], [b"\x00\xff", "h\u00e9"]], dtype=object)
    back = round_trip({"s": array})["s"]
    assert back.dtype == object
    assert back.shape == (2, 2)
    assert back.tolist() == [[b"a", b""], [b"\x00\xff", "h\u00e9".encode()]]


def test_object_scalar_and_empty() -> None:
    scalar = np.empty((), dtype=object)
    scalar[()] = b"only"
    back = round_trip({"s": scalar, "e": np.empty((0, 2), dtype=object)})
    assert back["s"].shape == () and back["s"][()] == b"only"
    assert back["e"].shape == (0, 2) and back["e"].dtype == object


def test_non_contiguous_inputs_arrive_in_logical_order() -> None:
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    strided = np.arange(20, dtype=np.int64)[::3]
    back = round_trip({"f": fortran, "s": strided})
    np.testing.assert_array_equal(back["f"], fortran)
    np.testing.assert_array_equal(back["s"], strided)


def test_many_tensors_keep_their_names_and_order() -> None:
    arrays = {f"t{i}": np.full((i,), i, dtype=np.int32) for i in range(5)}
    back = round_trip(arrays)
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)


def test_objects_other_than_bytes_or_str_are_refused() -> None:
    with pytest.raises(TypeError, match="bytes or str"):
        encode_arrays({"o": np.array([1, b"x"], dtype=object)})


def test_structured_and_void_dtypes_are_refused() -> None:
    with pytest.raises(TypeError):
        encode_arrays({"v": np.zeros(2, dtype="f4,i4")})


@pytest.mark.parametrize(
    ("spec", "payload"),
    [
        ({"name": "x", "dtype": "|O", "shape": [1], "nbytes": 8}, bytes(8)),
        ({"name": "x", "dtype": "f4,i4", "shape": [1], "nbytes": 8}, bytes(8)),
        ({"name": "x", "dtype": "not-a-dtype", "shape": [1], "nbytes": 4}, bytes(4)),
        ({"name": "x", "dtype": "<f4", "shape": [2], "nbytes": 4}, bytes(4)),
        ({"name": "x", "dtype": "<f4", "shape": [-1], "nbytes": 4}, bytes(4)),
        ({"name": "x", "dtype": "<f4", "shape": [1], "nbytes": 8}, bytes(4)),
        ({"name": "x", "dtype": "<f4", "shape": [1], "nbytes": 4}, bytes(6)),
        ({"name": "x", "dtype": "object", "shape": [1], "nbytes": 6}, b"\x05\0\0\0ab"),
        ({"name": "x", "dtype": "object", "shape": [1], "nbytes": 7}, b"\x02\0\0\0abc"),
        ({"name": "x", "dtype": "object", "shape": [2], "nbytes": 6}, b"\x02\0\0\0ab"),
        ({"dtype": "<f4", "shape": [1], "nbytes": 4}, bytes(4)),
    ],
)
def test_malformed_tensors_are_protocol_errors(spec: dict[str, object], payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_arrays([spec], memoryview(payload))


def test_message_round_trip_over_a_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    arrays = {"x": np.ones((2, 1), np.float32), "s": np.array([b"ab"], dtype=object)}
    send_message(left, {"op": "run", "outputs": ["y"]}, arrays)
    header, got = recv_message(right)
    assert header["op"] == "run" and header["outputs"] == ["y"]
    np.testing.assert_array_equal(got["x"], arrays["x"])
    assert got["s"].tolist() == [b"ab"]
    assert got["x"].flags.writeable  # a view of our own buffer: TensorFlow may take it as is


def test_large_message_survives_partial_sends(pair: tuple[socket.socket, socket.socket]) -> None:
    left, right = pair
    big = np.random.default_rng(0).random((1024, 1024))  # 8 MiB, far above the socket buffer
    received: dict[str, np.ndarray] = {}
    reader = threading.Thread(target=lambda: received.update(recv_message(right)[1]))
    reader.start()
    send_message(left, {}, {"big": big, "tail": np.arange(3)})
    reader.join(10)
    np.testing.assert_array_equal(received["big"], big)
    np.testing.assert_array_equal(received["tail"], np.arange(3))


def test_eof_between_messages_is_connection_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    left.close()
    with pytest.raises(ConnectionClosed, match="closed$"):
        recv_message(right)


def test_eof_inside_a_message_is_connection_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    left.sendall(struct.pack("<IQ", 10, 0) + b"{")
    left.close()
    with pytest.raises(ConnectionClosed, match="inside a message"):
        recv_message(right)


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack("<IQ", tf_worker.MAX_HEADER_BYTES + 1, 0),
        struct.pack("<IQ", 2, 0) + b"[]",
        struct.pack("<IQ", 3, 0) + b"{x}",
    ],
)
def test_bad_headers_are_protocol_errors(
    pair: tuple[socket.socket, socket.socket], raw: bytes
) -> None:
    left, right = pair
    left.sendall(raw)
    with pytest.raises(ProtocolError):
        recv_message(right)


def test_one_worker_key_per_owner() -> None:
    """Every SavedModel version of one Triton shares its worker; another Triton has its own."""
    assert tf_worker.worker_key(1) == tf_worker.worker_key(1)
    assert tf_worker.worker_key(1) != tf_worker.worker_key(2)


def test_socket_path_falls_back_to_abstract_when_too_long(tmp_path: Path) -> None:
    sock, lock = tf_worker.socket_paths("k" * 24, "/tmp")
    assert sock == "/tmp/tfw-" + "k" * 24 + ".sock"
    deep = str(tmp_path / ("d" * 100))
    sock, lock = tf_worker.socket_paths("k" * 24, deep)
    assert sock.startswith("@") and lock.startswith(deep)
    assert tf_worker.socket_address(sock).startswith("\0")


def test_runtime_dir_is_private() -> None:
    path = tf_worker.runtime_dir()
    info = os.lstat(path)
    assert info.st_uid == os.getuid()
    assert info.st_mode & 0o077 == 0


def test_exclusive_serialises_holders(tmp_path: Path) -> None:
    lock = str(tmp_path / "w.lock")
    order: list[str] = []
    with tf_worker.exclusive(lock, 5):
        other = threading.Thread(target=lambda: order.append(_hold(lock)))
        other.start()
        other.join(0.3)
        assert other.is_alive()  # blocked on our flock
        order.append("first")
    other.join(5)
    assert order == ["first", "second"]


def _hold(lock: str) -> str:
    with tf_worker.exclusive(lock, 5):
        return "second"


def test_exclusive_times_out(tmp_path: Path) -> None:
    lock = str(tmp_path / "w.lock")
    with tf_worker.exclusive(lock, 5), pytest.raises(TimeoutError):
        _hold_briefly(lock)


def _hold_briefly(lock: str) -> None:
    with tf_worker.exclusive(lock, 0.2):
        pass


def test_exclusive_retries_when_the_holder_removed_the_file(tmp_path: Path) -> None:
    """A worker unlinks the lock file on exit while holding it; a waiter that locked the old
    inode must not think it holds the lock the path now names."""
    lock = str(tmp_path / "w.lock")
    held: list[int] = []

    def waiter() -> None:
        with tf_worker.exclusive(lock, 5):
            held.append(os.stat(lock).st_ino)

    with tf_worker.exclusive(lock, 5):
        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(0.2)
        os.unlink(lock)
    thread.join(5)
    assert held and os.path.exists(lock)
    assert held[0] == os.stat(lock).st_ino


def test_errors_lose_the_python_stack_tf_appends() -> None:
    message = (
        "Graph execution error:\n\n"
        "Detected at node ParseExample defined at (most recent call last):\n"
        '  File "/srv/tf_worker.py", line 516, in load\n\n'
        "Name: <unknown>, Feature: x (data type: float) is required but could not be found.\n"
        "\t [[{{node ParseExample}}]]"
    )
    cleaned = tf_worker._without_trace(message)
    assert cleaned.startswith("Name: <unknown>, Feature: x")
    assert "tf_worker.py" not in cleaned and "Graph execution error" not in cleaned
    assert tf_worker._without_trace("plain message") == "plain message"


def test_idle_clock_runs_only_with_no_stub_connected() -> None:
    """The worker exits ``idle_seconds`` after its last stub leaves, never while one is attached."""
    server = tf_worker.SignatureServer("/no/saved_model")
    server.attach()
    server.attach()
    assert server.idle_for() == 0.0
    ours, theirs = socket.socketpair()
    theirs.close()
    server.serve(ours)  # the first stub hangs up
    assert server.idle_for() == 0.0
    ours, theirs = socket.socketpair()
    theirs.close()
    server.serve(ours)  # the last one
    assert server.idle_for() > 0.0
