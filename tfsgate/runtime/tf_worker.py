"""One TensorFlow process per SavedModel version, shared by the Triton stubs of all its signatures.

A python-backend stub that imports TensorFlow costs about 500 MB; one with numpy alone about 40 MB.
So the stubs (``runner_model.py``, copied as ``model.py``) stay numpy-only and forward every call to
this worker over a Unix domain socket. The converter copies this file beside ``model.py`` as
``tf_worker.py``; it must stay self-contained (standard library and numpy at import time;
TensorFlow only inside the worker process) because it may run in a Triton container without our
package.

The module has three parts:

- the wire format: a fixed prefix (header length, payload length), a JSON header describing the
  tensors, then their raw bytes. Numeric, bool and fixed-width string arrays travel as their
  C-ordered buffer; object arrays (TensorFlow's and Triton's strings) as 4-byte little-endian
  length-prefixed elements, the same layout as Triton's BYTES tensors. Nothing is unpickled:
  the peer is another process and the format must not let it run code here.
- ``WorkerClient``, used by the stubs: connects to the worker of its version or, when none is
  running, starts one under an exclusive ``flock`` so that stubs loading concurrently start one.
- ``main``: the worker itself (``python3 tf_worker.py --saved_model DIR --socket PATH ...``). It
  binds its socket before importing TensorFlow (so a waiting starter sees it quickly), loads the
  SavedModel once, serves each connection on its own thread, counts connected stubs and exits
  a few seconds after the last one leaves, or at once when the owning Triton process dies.

Workers are keyed by the SavedModel's real path, a fingerprint of its files and the owning Triton
process: a replaced SavedModel or a second Triton on the same host never reaches a stale worker.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import select
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

PROTOCOL = 1
_PREFIX = struct.Struct("<IQ")  # header length, payload length
_ELEMENT_LENGTH = struct.Struct("<I")
MAX_HEADER_BYTES = 16 << 20
MAX_PAYLOAD_BYTES = 1 << 36
# Kinds sent as raw buffers: bool, signed/unsigned ints, floats, complex, fixed-width bytes/str.
_RAW_KINDS = frozenset("biufcSU")
_IOV_MAX = 512
# sun_path is 108 bytes including the terminating NUL; longer paths go to the abstract namespace.
_MAX_SOCKET_PATH = 107
OBJECT_DTYPE = "object"

log = logging.getLogger("tf_worker")


# -- wire format -----------------------------------------------------------------------------


class ProtocolError(ValueError):
    """The peer sent something that is not a well-formed message."""


class ConnectionClosed(ConnectionError):
    """The peer closed the connection (at a message boundary or inside one)."""


def _pack_objects(array: np.ndarray) -> bytes:
    """Object array -> length-prefixed elements; str is sent as UTF-8, like TensorFlow does."""
    parts: list[bytes] = []
    for item in array.reshape(-1):
        if isinstance(item, str):
            data = item.encode("utf-8")
        elif isinstance(item, bytes | bytearray | memoryview):
            data = bytes(item)
        else:
            raise TypeError(f"object arrays must hold bytes or str, not {type(item).__name__}")
        parts.append(_ELEMENT_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def _unpack_objects(data: memoryview, shape: tuple[int, ...]) -> np.ndarray:
    count = int(np.prod(shape, dtype=np.int64))
    out = np.empty(count, dtype=object)
    offset, end = 0, len(data)
    for i in range(count):
        if offset + _ELEMENT_LENGTH.size > end:
            raise ProtocolError("object tensor truncated")
        (length,) = _ELEMENT_LENGTH.unpack_from(data, offset)
        offset += _ELEMENT_LENGTH.size
        if offset + length > end:
            raise ProtocolError("object tensor truncated")
        out[i] = bytes(data[offset : offset + length])
        offset += length
    if offset != end:
        raise ProtocolError("object tensor has trailing bytes")
    return out.reshape(shape)


def encode_arrays(arrays: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[memoryview]]:
    """Tensor descriptions for the header and the buffers that follow it, in the same order."""
    specs: list[dict[str, Any]] = []
    buffers: list[memoryview] = []
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype.kind == "O":
            data = memoryview(_pack_objects(array))
            dtype = OBJECT_DTYPE
        elif array.dtype.kind in _RAW_KINDS and array.dtype.fields is None:
            # Not np.ascontiguousarray: it turns a 0-d array into shape (1,).
            array = array if array.flags.c_contiguous else array.copy(order="C")
            data = array.reshape(-1).view(np.uint8).data
            dtype = array.dtype.str
        else:
            raise TypeError(f"tensor {name!r}: dtype {array.dtype} cannot be sent")
        specs.append(
            {"name": name, "dtype": dtype, "shape": list(array.shape), "nbytes": len(data)}
        )
        buffers.append(data)
    return specs, buffers


def _shape(spec: Mapping[str, Any]) -> tuple[int, ...]:
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError(f"bad shape {shape!r}")
    return tuple(shape)


def _raw_dtype(name: Any) -> np.dtype[Any]:
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"unknown dtype {name!r}") from exc
    if dtype.kind not in _RAW_KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise ProtocolError(f"dtype {name!r} is not allowed on the wire")
    return dtype


def decode_arrays(specs: Any, payload: memoryview) -> dict[str, np.ndarray]:
    """Inverse of ``encode_arrays``; raw arrays are views of ``payload`` (no copy)."""
    if not isinstance(specs, list):
        raise ProtocolError("tensors must be a list")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ProtocolError("tensor description without a name")
        shape = _shape(spec)
        nbytes = spec.get("nbytes")
        if not isinstance(nbytes, int) or nbytes < 0 or offset + nbytes > len(payload):
            raise ProtocolError(f"tensor {spec['name']!r}: bad length")
        chunk = payload[offset : offset + nbytes]
        offset += nbytes
        if spec.get("dtype") == OBJECT_DTYPE:
            arrays[spec["name"]] = _unpack_objects(chunk, shape)
            continue
        dtype = _raw_dtype(spec.get("dtype"))
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
            raise ProtocolError(f"tensor {spec['name']!r}: {nbytes} bytes do not fit {shape}")
        arrays[spec["name"]] = np.frombuffer(chunk, dtype=dtype).reshape(shape)
    if offset != len(payload):
        raise ProtocolError("payload has trailing bytes")
    return arrays


def _send_views(sock: socket.socket, views: list[memoryview]) -> None:
    """Gather-write every view with as few syscalls as the kernel allows (sendmsg may be partial)."""
    pending = [v for v in views if len(v)]
    while pending:
        sent = sock.sendmsg(pending[:_IOV_MAX])
        while pending and sent >= len(pending[0]):
            sent -= len(pending[0])
            pending.pop(0)
        if sent:
            pending[0] = pending[0][sent:]


def send_message(
    sock: socket.socket, header: Mapping[str, Any], arrays: Mapping[str, Any] | None = None
) -> None:
    specs, buffers = encode_arrays(arrays or {})
    head = json.dumps({**header, "tensors": specs}, separators=(",", ":")).encode()
    payload = sum(len(b) for b in buffers)
    prefix = _PREFIX.pack(len(head), payload)
    _send_views(sock, [memoryview(prefix), memoryview(head), *buffers])


def _recv_into(sock: socket.socket, view: memoryview, at_boundary: bool = False) -> None:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            where = "" if at_boundary and got == 0 else " inside a message"
            raise ConnectionClosed(f"connection closed{where}")
        got += n


def recv_message(sock: socket.socket) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read one message; raises ``ConnectionClosed`` on EOF and ``ProtocolError`` on garbage."""
    prefix = bytearray(_PREFIX.size)
    _recv_into(sock, memoryview(prefix), at_boundary=True)
    head_len, payload_len = _PREFIX.unpack(prefix)
    if head_len > MAX_HEADER_BYTES or payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"message too large ({head_len} + {payload_len} bytes)")
    head = bytearray(head_len)
    _recv_into(sock, memoryview(head))
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    payload = bytearray(payload_len)
    _recv_into(sock, memoryview(payload))
    return header, decode_arrays(header.get("tensors", []), memoryview(payload))


# -- where a worker lives --------------------------------------------------------------------


def runtime_dir() -> str:
    """A private per-user directory under the temp dir; refuses one someone else could write."""
    path = os.path.join(tempfile.gettempdir(), f"tfsgate-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{path} must be a directory private to uid {os.getuid()}")
    return path


def worker_key(saved_model: str, fingerprint: str, owner_pid: int) -> str:
    identity = [PROTOCOL, os.path.realpath(saved_model), fingerprint, owner_pid]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]


def socket_address(path: str) -> str:
    """``@name`` (how argv carries it) is an abstract socket; anything else a filesystem path."""
    return "\0" + path[1:] if path.startswith("@") else path


def socket_paths(key: str, directory: str | None = None) -> tuple[str, str]:
    """(socket, lock file) for a worker key; the socket falls back to the abstract namespace
    when the temp dir is too deep for sun_path."""
    directory = directory or runtime_dir()
    sock = os.path.join(directory, f"tfw-{key}.sock")
    if len(os.fsencode(sock)) > _MAX_SOCKET_PATH:
        sock = f"@tfsgate-{os.getuid()}-tfw-{key}"
    return sock, os.path.join(directory, f"tfw-{key}.lock")


@contextlib.contextmanager
def exclusive(lock_path: str, timeout: float) -> Iterator[None]:
    """Hold ``flock(LOCK_EX)`` on ``lock_path``. The worker unlinks the file when it exits, so
    after locking we check the path still names the inode we hold (else we locked a ghost)."""
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{lock_path} stayed locked for {timeout:.0f}s"
                        ) from None
                    time.sleep(0.02)
            try:
                current = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                yield
                return
        finally:
            os.close(fd)


# -- the stub's side -------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """The worker answered with an error; ``code`` is TensorFlow's status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class WorkerUnavailable(WorkerError):
    """No worker could be reached or started."""

    def __init__(self, message: str) -> None:
        super().__init__("UNAVAILABLE", message)


def _try_connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(socket_address(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


class WorkerClient:
    """One stub's connection to the TensorFlow worker of its SavedModel version.

    ``connect`` reaches the running worker or starts one; ``run`` sends one call. A call that
    loses its connection (the worker died) reconnects, which restarts the worker, and is retried
    once: signature calls are pure, so running one twice is harmless.
    """

    def __init__(
        self,
        saved_model: str,
        signature: str,
        worker_file: str,
        fingerprint: str = "",
        owner_pid: int | None = None,
        python: str | None = None,
        directory: str | None = None,
        idle_seconds: float = 5.0,
        load_timeout: float = 600.0,
    ) -> None:
        self.saved_model = os.path.realpath(saved_model)
        self.signature = signature
        self.worker_file = os.path.abspath(worker_file)
        self.owner_pid = os.getppid() if owner_pid is None else owner_pid
        self.python = python or sys.executable
        self.idle_seconds = idle_seconds
        self.load_timeout = load_timeout
        self.key = worker_key(self.saved_model, fingerprint, self.owner_pid)
        self.socket_path, self.lock_path = socket_paths(self.key, directory)
        self.outputs: list[str] = []
        self._sock: socket.socket | None = None
        self._spawned: subprocess.Popen[bytes] | None = None

    def connect(self) -> None:
        """Reach the worker, starting it if needed, and wait until it has loaded the SavedModel."""
        self.close()
        last: Exception | None = None
        for _ in range(3):
            sock = _try_connect(self.socket_path) or self._start_worker()
            try:
                self._hello(sock)
            except (OSError, ProtocolError) as exc:
                # The worker was exiting as we came; the next attempt starts a fresh one.
                sock.close()
                last = exc
                continue
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            return
        raise WorkerUnavailable(f"TensorFlow worker for {self.saved_model} unreachable: {last}")

    def _hello(self, sock: socket.socket) -> None:
        sock.settimeout(self.load_timeout)
        send_message(sock, {"op": "hello", "protocol": PROTOCOL, "signature": self.signature})
        header, _ = recv_message(sock)
        sock.settimeout(None)
        if not header.get("ok"):
            raise WorkerError(str(header.get("code", "UNKNOWN")), str(header.get("error", "")))
        self.outputs = [str(name) for name in header.get("outputs", [])]

    def _start_worker(self) -> socket.socket:
        with exclusive(self.lock_path, self.load_timeout):
            sock = _try_connect(self.socket_path)
            if sock is not None:
                return sock  # another stub started it while we waited for the lock
            if not self.socket_path.startswith("@"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.socket_path)  # left by a worker that died
            self._reap()
            command = [
                self.python,
                self.worker_file,
                "--saved_model",
                self.saved_model,
                "--socket",
                self.socket_path,
                "--lock",
                self.lock_path,
                "--owner_pid",
                str(self.owner_pid),
                "--idle_seconds",
                str(self.idle_seconds),
            ]
            # Same process group as Triton (no setsid): stopping Triton's group stops the worker.
            self._spawned = subprocess.Popen(command, stdin=subprocess.DEVNULL, close_fds=True)
            deadline = time.monotonic() + 60.0
            while time.monotonic() < deadline:
                code = self._spawned.poll()
                if code is not None:
                    raise WorkerUnavailable(
                        f"TensorFlow worker exited with {code} before listening (see its stderr)"
                    )
                sock = _try_connect(self.socket_path)
                if sock is not None:
                    return sock
                time.sleep(0.01)
            raise WorkerUnavailable(f"TensorFlow worker did not listen on {self.socket_path}")

    def run(
        self, arrays: Mapping[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Call the signature; raises ``WorkerError`` with TensorFlow's status on failure."""
        for attempt in range(2):
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            try:
                send_message(self._sock, {"op": "run", "outputs": outputs}, arrays)
                header, result = recv_message(self._sock)
            except (OSError, ProtocolError) as exc:
                self.close()
                if attempt:
                    raise WorkerUnavailable(f"TensorFlow worker connection lost: {exc}") from exc
                continue
            if not header.get("ok"):
                raise WorkerError(str(header.get("code", "UNKNOWN")), str(header.get("error", "")))
            return result
        raise AssertionError("unreachable")

    def _reap(self) -> None:
        """Collect a worker we started once it has exited, so it does not linger as a zombie."""
        if self._spawned is not None and self._spawned.poll() is not None:
            self._spawned = None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
        self._reap()


# -- the worker ------------------------------------------------------------------------------


def _error_reply(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "error_code", None)
    if isinstance(code, int):
        # TensorFlow's own table (tensorflow/core/protobuf/error_codes.proto); only TF errors
        # carry error_code, so TensorFlow is loaded by then.
        from tensorflow.core.protobuf import error_codes_pb2

        names = error_codes_pb2.Code
        status = names.Name(code) if 0 < code <= 16 else "UNKNOWN"
    elif isinstance(exc, TypeError | ValueError):
        # Raised by a concrete function whose arguments do not bind (missing, extra, bad dtype).
        status = "INVALID_ARGUMENT"
    else:
        status = "INTERNAL"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"ok": False, "code": status, "error": _without_trace(message)}


def _without_trace(message: str) -> str:
    """TF's error without the Python stack it appends in eager mode ("Graph execution error:
    Detected at node X defined at (most recent call last): File ..."): clients should see
    what went wrong, as TF Serving reports it, not this process's source paths."""
    if "defined at (most recent call last):" not in message:
        return message
    lines = message.splitlines()
    kept = []
    skipping = False
    for line in lines:
        if line.startswith("Graph execution error"):
            continue
        if "defined at (most recent call last):" in line:
            skipping = True
            continue
        if skipping and (not line.strip() or line.startswith("  File ") or line.startswith("    ")):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept).strip() or message


class SignatureServer:
    """Loads one SavedModel and serves its signatures to any number of connected stubs."""

    def __init__(self, saved_model: str) -> None:
        self.saved_model = saved_model
        self._loaded = threading.Event()
        self._load_error = ""
        self._tf: Any = None
        self._model: Any = None
        self._signatures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._clients = 0
        self._idle_since = time.monotonic()

    def load(self) -> None:
        started = time.monotonic()
        try:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            self._tf = tf
            # Keep the loaded object alive: its concrete functions refer to its variables.
            self._model = tf.saved_model.load(self.saved_model, tags=["serve"])
            self._signatures = dict(self._model.signatures)
            log.info(
                "loaded %s (%s) in %.1fs",
                self.saved_model,
                ", ".join(sorted(self._signatures)),
                time.monotonic() - started,
            )
        except BaseException as exc:  # noqa: BLE001 - reported to every stub that connects
            self._load_error = f"cannot load SavedModel {self.saved_model}: {exc}"
            log.error("%s", self._load_error)
        finally:
            self._loaded.set()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._clients else time.monotonic() - self._idle_since

    def attach(self) -> None:
        """Count a stub in; called by the accepting thread so the idle check cannot miss it."""
        with self._lock:
            self._clients += 1

    def serve(self, conn: socket.socket) -> None:
        """One stub's connection (already attached): a hello naming its signature, then calls
        until it hangs up."""
        try:
            function = self._hello(conn)
            while function is not None:
                header, arrays = recv_message(conn)
                try:
                    outputs = self._run(function, arrays, header.get("outputs"))
                except Exception as exc:  # noqa: BLE001 - sent back as the call's error
                    send_message(conn, _error_reply(exc))
                    continue
                send_message(conn, {"ok": True}, outputs)
        except ConnectionClosed:
            pass
        except (OSError, ProtocolError) as exc:
            log.warning("dropping a connection: %s", exc)
        finally:
            conn.close()
            with self._lock:
                self._clients -= 1
                if not self._clients:
                    self._idle_since = time.monotonic()

    def _hello(self, conn: socket.socket) -> Any:
        header, _ = recv_message(conn)
        if header.get("op") != "hello" or header.get("protocol") != PROTOCOL:
            send_message(conn, {"ok": False, "code": "INTERNAL", "error": "protocol mismatch"})
            return None
        self._loaded.wait()
        if self._load_error:
            send_message(conn, {"ok": False, "code": "UNAVAILABLE", "error": self._load_error})
            return None
        name = header.get("signature")
        function = self._signatures.get(name) if isinstance(name, str) else None
        if function is None:
            error = f"SavedModel {self.saved_model} has no signature {name!r}"
            send_message(conn, {"ok": False, "code": "NOT_FOUND", "error": error})
            return None
        outputs = sorted(function.structured_outputs)
        send_message(conn, {"ok": True, "outputs": outputs})
        return function

    def _run(self, function: Any, arrays: dict[str, np.ndarray], wanted: Any) -> dict[str, Any]:
        tensors = {k: self._tf.constant(v) for k, v in arrays.items()}
        results = function(**tensors)
        names = wanted if isinstance(wanted, list) and wanted else list(results)
        return {k: results[k].numpy() for k in names}


def _listen(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_address(path))
    listener.listen(128)
    return listener


def _owner_watch(pid: int) -> int | None:
    """A pidfd that turns readable when ``pid`` exits; None when pidfds are unavailable
    (old kernels): then the owner is polled. Raises ProcessLookupError if it is already gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        raise
    except (AttributeError, OSError):
        return None


def _owner_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_up(socket_path: str, lock_path: str, socket_inode: int | None) -> None:
    """Remove our socket file (unless a successor already replaced it) and the lock file."""
    with contextlib.suppress(OSError, TimeoutError), exclusive(lock_path, 2.0):
        if socket_inode is not None:
            with contextlib.suppress(OSError):
                if os.stat(socket_path).st_ino == socket_inode:
                    os.unlink(socket_path)
        os.unlink(lock_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve one SavedModel's signatures to Triton.")
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--socket", required=True, help="socket path, or @name for abstract")
    parser.add_argument("--lock", required=True, help="the starters' lock file (removed at exit)")
    parser.add_argument("--owner_pid", type=int, default=0, help="exit when this process exits")
    parser.add_argument("--idle_seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"tf_worker[{os.getpid()}] %(levelname)s %(message)s",
    )

    listener = _listen(args.socket)
    inode = None if args.socket.startswith("@") else os.stat(args.socket).st_ino
    server = SignatureServer(args.saved_model)
    threading.Thread(target=server.load, name="load", daemon=True).start()
    watch: int | None = None
    if args.owner_pid:
        try:
            watch = _owner_watch(args.owner_pid)
        except ProcessLookupError:
            os._exit(0)
    waitables: list[Any] = [listener] if watch is None else [listener, watch]
    reason = ""
    while not reason:
        readable, _, _ = select.select(waitables, [], [], 0.5)
        if listener in readable:
            conn, _ = listener.accept()
            server.attach()
            threading.Thread(target=server.serve, args=(conn,), daemon=True).start()
        if (watch is not None and watch in readable) or (
            watch is None and args.owner_pid and not _owner_alive(args.owner_pid)
        ):
            reason = f"owner {args.owner_pid} exited"
        elif server.idle_for() >= args.idle_seconds:
            # Only this thread accepts, so no stub can slip in between the check and the close;
            # one still in the backlog sees the connection reset and starts a new worker.
            reason = f"no stub connected for {args.idle_seconds:.0f}s"
    listener.close()
    _clean_up(args.socket, args.lock, inode)
    log.info("exiting: %s", reason)
    logging.shutdown()
    # TensorFlow's threads make a normal interpreter shutdown slow or crashy; nothing is pending.
    os._exit(0)


if __name__ == "__main__":
    main()
