"""One TensorFlow process per Triton server, shared by the stubs of every TensorFlow-served signature.

A python-backend stub that imports TensorFlow costs about 550 MB; one with numpy alone about 40 MB,
and a SavedModel loaded into a process that already holds TensorFlow costs well under 1 MB for a
small graph (measured: 24 models in one process, 564 MB). So, as in TF Serving's single process,
the stubs (``runner_model.py``, copied as ``model.py``) stay numpy-only and forward every call over
a Unix domain socket to ONE worker, which holds every SavedModel version a stub asked for. The
converter copies this file beside ``model.py`` as ``tf_worker.py``; it must stay self-contained
(standard library and numpy at import time; TensorFlow only inside the worker process) because it
may run in a Triton container without our package.

The module has three parts:

- the wire format: a fixed prefix (header length, payload length), a JSON header describing the
  tensors, then their raw bytes. Numeric, bool and fixed-width string arrays travel as their
  C-ordered buffer; object arrays (TensorFlow's and Triton's strings) as 4-byte little-endian
  length-prefixed elements, the same layout as Triton's BYTES tensors. Nothing is unpickled:
  the peer is another process and the format must not let it run code here.
- ``WorkerClient``, used by the stubs: connects to the worker of its Triton or, when none is
  running, starts one under an exclusive ``flock`` so that stubs loading concurrently start one;
  its hello names the SavedModel version (path, files fingerprint, tags) and the signature.
- ``main``: the worker itself (``python3 tf_worker.py --socket PATH ...``). It binds its socket
  before importing TensorFlow (so a waiting starter sees it quickly). Each version is loaded once,
  as TF Serving's C++ loader does it: ``tf.compat.v1.saved_model.loader.load`` into a session
  (assets, main/legacy init op), and run by tensor names through session callables, which do not
  check feed shapes in Python (TF Serving does not either: TF 1.0 graphs declare the examples
  placeholder scalar and are fed vectors). A version's session is closed once no stub uses it for
  a few seconds (Triton unloaded it); the worker exits a few seconds after the last stub leaves, or
  at once when the owning Triton process dies. Intra/inter-op threads are process-wide, as in TF
  Serving (``--tensorflow_intra_op_parallelism``/``--tensorflow_inter_op_parallelism``).

Workers are keyed by the owning Triton process and this file's protocol version; versions inside a
worker by the SavedModel's real path, a fingerprint of its files and the tags, so a replaced
SavedModel never reaches a stale session.

Over 400 lines on purpose: the converter copies this one file beside every runner, and the runner
loads it by path inside Triton, where tfsgate may not be installed; a package would have to be
copied and put on the stub's path instead.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import importlib
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

PROTOCOL = 2
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


def worker_key(owner_pid: int) -> str:
    identity = [PROTOCOL, owner_pid]
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
    """One stub's connection to the TensorFlow worker of its Triton, for one signature of one
    SavedModel version.

    ``connect`` reaches the running worker or starts one, and waits until it has loaded the
    version; ``run`` sends one call. A call that loses its connection (the worker died) reconnects,
    which restarts the worker, and is retried once: signature calls are pure, so running one twice
    is harmless.
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
        tags: list[str] | None = None,
        threads: tuple[int, int] = (0, 0),
        custom_op_libraries: list[str] | None = None,
        session_config: str = "",
    ) -> None:
        self.saved_model = os.path.realpath(saved_model)
        self.signature = signature
        self.fingerprint = fingerprint
        self.tags = list(tags or ["serve"])
        self.worker_file = os.path.abspath(worker_file)
        self.owner_pid = os.getppid() if owner_pid is None else owner_pid
        self.python = python or sys.executable
        self.idle_seconds = idle_seconds
        self.load_timeout = load_timeout
        self.threads = threads  # (intra, inter); 0 lets TensorFlow choose
        self.custom_op_libraries = list(custom_op_libraries or [])
        self.session_config = session_config  # base64 ConfigProto; "" = the worker's default
        self.key = worker_key(self.owner_pid)
        self.socket_path, self.lock_path = socket_paths(self.key, directory)
        self.outputs: list[str] = []
        self._sock: socket.socket | None = None
        self._spawned: subprocess.Popen[bytes] | None = None

    def connect(self) -> None:
        """Reach the worker, starting it if needed, and wait until it has loaded the version."""
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
        hello = {
            "op": "hello",
            "protocol": PROTOCOL,
            "saved_model": self.saved_model,
            "fingerprint": self.fingerprint,
            "tags": self.tags,
            "signature": self.signature,
            "custom_op_libraries": self.custom_op_libraries,
            "session_config": self.session_config,
        }
        send_message(sock, hello)
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
                "--socket",
                self.socket_path,
                "--lock",
                self.lock_path,
                "--owner_pid",
                str(self.owner_pid),
                "--idle_seconds",
                str(self.idle_seconds),
                "--intra_op_threads",
                str(self.threads[0]),
                "--inter_op_threads",
                str(self.threads[1]),
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
        self,
        arrays: Mapping[str, np.ndarray],
        outputs: list[str] | None = None,
        chunk: int = 0,
    ) -> dict[str, np.ndarray]:
        """Call the signature (at most ``chunk`` rows per session run when > 0); raises
        ``WorkerError`` with TensorFlow's status on failure."""
        for attempt in range(2):
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            try:
                send_message(self._sock, {"op": "run", "outputs": outputs, "chunk": chunk}, arrays)
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


_IMPORT_LOCK = threading.Lock()


def import_tensorflow() -> Any:
    """TensorFlow, imported once, without the Keras import its ``__init__`` makes.

    TensorFlow's ``__init__`` imports ``keras.src.optimizers`` eagerly, only so that Keras models
    loaded by ``tf.saved_model.load`` find their optimizers registered (its comment: b/196254385),
    and Keras brings scikit-learn (most of SciPy with it) and matplotlib: measured here, 1.3-1.5 s
    of a 3.8-3.9 s import and 104 MiB of RSS (79 MiB private). This worker and the export child load
    SavedModels with the TF1 loader into a session, as TF Serving does, which restores
    variables by name and needs none of that. With ``keras`` marked missing while TensorFlow
    imports, its ``__init__`` takes the path it takes where Keras is not installed; ``tf.keras``
    still imports Keras later if anything (a custom op package) asks for it.

    The main loop starts this while the first stub's hello is on its way. Concurrent imports of
    TensorFlow's proto modules from two threads fail ("Depends on file ... but it has not been
    loaded"), hence the lock."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _IMPORT_LOCK:
        blocked = "tensorflow" not in sys.modules and "keras" not in sys.modules
        if blocked:
            sys.modules["keras"] = None  # type: ignore[assignment]  # import: ModuleNotFoundError
        try:
            import tensorflow
        finally:
            if blocked and "keras" in sys.modules and sys.modules["keras"] is None:
                del sys.modules["keras"]
        return tensorflow


_LIBRARIES: set[str] = set()


def load_custom_op_libraries(libraries: list[str]) -> None:
    """Register the ops of ``--custom_op_libraries`` in this process before a SavedModel that
    needs them loads: a path (``.so``) through ``tf.load_op_library``, as TF Serving users link
    theirs in; anything else is a Python package imported for its ops (``tensorflow_text``).
    Raises ``RuntimeError`` naming the library that fails; each loads once per process."""
    tf = import_tensorflow()
    for library in libraries:
        with _IMPORT_LOCK:
            if library in _LIBRARIES:
                continue
            try:
                if library.endswith(".so") or os.sep in library:
                    tf.load_op_library(library)
                else:
                    importlib.import_module(library)
            except Exception as exc:  # noqa: BLE001 - NotFoundError, ImportError, OSError...
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                raise RuntimeError(f"cannot load custom op library {library}: {message}") from None
            _LIBRARIES.add(library)


class LoadedVersion:
    """One SavedModel version in a TF1 session, as TF Serving's loader holds it."""

    def __init__(
        self, saved_model: str, tags: list[str], libraries: list[str] | None = None
    ) -> None:
        self.saved_model = saved_model
        self.tags = tags
        self.libraries = list(libraries or [])
        self.loaded = threading.Event()
        self.error = ""
        self.session: Any = None
        self.signatures: dict[str, Any] = {}  # name -> SignatureDef
        self.clients = 0
        self.idle_since = time.monotonic()
        self._callables: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def load(self, config: Any) -> None:
        started = time.monotonic()
        try:
            tf = import_tensorflow()
            load_custom_op_libraries(self.libraries)
            tf1 = tf.compat.v1
            graph = tf.Graph()
            session = tf1.Session(graph=graph, config=config)
            with graph.as_default():
                meta_graph = tf1.saved_model.loader.load(session, self.tags, self.saved_model)
            self.session = session
            self.signatures = {
                k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")
            }
            log.info(
                "loaded %s (%s) in %.1fs",
                self.saved_model,
                ", ".join(sorted(self.signatures)),
                time.monotonic() - started,
            )
        except BaseException as exc:  # noqa: BLE001 - reported to every stub that connects
            message = getattr(exc, "message", None) or str(exc)
            self.error = f"cannot load SavedModel {self.saved_model}: {message}"
            log.error("%s", self.error)
        finally:
            self.loaded.set()

    def callable(self, signature: str, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Any:
        """A session callable fed and fetched by the signature's tensor names."""
        key = (signature, feeds, fetches)
        with self._lock:
            found = self._callables.get(key)
            if found is not None:
                return found
        from tensorflow.core.protobuf import config_pb2

        definition = self.signatures[signature]
        for name in feeds:
            if name not in definition.inputs:
                raise ValueError(f"input {name!r} is not in signature {signature!r}")
        for name in fetches:
            if name not in definition.outputs:
                raise ValueError(f"output {name!r} is not in signature {signature!r}")
        options = config_pb2.CallableOptions(
            feed=[definition.inputs[k].name for k in feeds],
            fetch=[definition.outputs[k].name for k in fetches],
        )
        # Session._make_callable_from_options: TF's callable API without the Python-side feed
        # shape check of Session.run, as TF Serving's C++ Session::Run.
        made = self.session._make_callable_from_options(options)
        with self._lock:
            self._callables[key] = made
        return made

    def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                self.session.close()
            self.session = None
        self._callables.clear()


class SignatureServer:
    """Loads SavedModel versions on demand and serves their signatures to connected stubs."""

    def __init__(
        self,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        version_idle_seconds: float = 5.0,
    ) -> None:
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.version_idle_seconds = version_idle_seconds
        self._versions: dict[tuple[str, str, tuple[str, ...]], LoadedVersion] = {}
        self._lock = threading.Lock()
        self._clients = 0
        self._idle_since = time.monotonic()

    def _config(self, session_config: str = "") -> Any:
        """The version's session config: the stub's (TF Serving's session flags, base64) or the
        worker's thread sizes. The first session creates TensorFlow's process-wide pools."""
        import_tensorflow()
        from tensorflow.core.protobuf import config_pb2

        if session_config:
            return config_pb2.ConfigProto.FromString(base64.b64decode(session_config))
        return config_pb2.ConfigProto(
            intra_op_parallelism_threads=self.intra_op_threads,
            inter_op_parallelism_threads=self.inter_op_threads,
        )

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._clients else time.monotonic() - self._idle_since

    def attach(self) -> None:
        """Count a stub in; called by the accepting thread so the idle check cannot miss it."""
        with self._lock:
            self._clients += 1

    def _version(
        self,
        saved_model: str,
        fingerprint: str,
        tags: list[str],
        libraries: list[str],
        session_config: str = "",
    ) -> LoadedVersion:
        """The version, attached to the calling stub; the first stub to ask starts its load."""
        key = (os.path.realpath(saved_model), fingerprint, tuple(sorted(tags)))
        with self._lock:
            version = self._versions.get(key)
            start = version is None
            if version is None:
                version = self._versions[key] = LoadedVersion(key[0], list(tags), libraries)
            version.clients += 1
        if start:
            version.load(self._config(session_config))
        version.loaded.wait()
        return version

    def _detach(self, version: LoadedVersion) -> None:
        with self._lock:
            version.clients -= 1
            if not version.clients:
                version.idle_since = time.monotonic()

    def close_idle_versions(self) -> None:
        """Close the sessions of versions no stub has used for a while (Triton unloaded them);
        the grace lets a reload of the same version reuse the session."""
        now = time.monotonic()
        with self._lock:
            idle = [
                k
                for k, v in self._versions.items()
                if not v.clients
                and v.loaded.is_set()
                and now - v.idle_since >= self.version_idle_seconds
            ]
            closing = [self._versions.pop(k) for k in idle]
        for version in closing:
            log.info("closing %s: no stub uses it", version.saved_model)
            version.close()

    def serve(self, conn: socket.socket) -> None:
        """One stub's connection (already attached): a hello naming its version and signature,
        then calls until it hangs up."""
        version: LoadedVersion | None = None
        try:
            version, signature = self._hello(conn)
            while version is not None and signature:
                header, arrays = recv_message(conn)
                try:
                    outputs = self._run(version, signature, arrays, header)
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
            if version is not None:
                self._detach(version)
            with self._lock:
                self._clients -= 1
                if not self._clients:
                    self._idle_since = time.monotonic()

    def _hello(self, conn: socket.socket) -> tuple[LoadedVersion | None, str]:
        header, _ = recv_message(conn)
        if header.get("op") != "hello" or header.get("protocol") != PROTOCOL:
            send_message(conn, {"ok": False, "code": "INTERNAL", "error": "protocol mismatch"})
            return None, ""
        saved_model, name = header.get("saved_model"), header.get("signature")
        tags = header.get("tags") or ["serve"]
        if not isinstance(saved_model, str) or not isinstance(name, str):
            send_message(conn, {"ok": False, "code": "INTERNAL", "error": "bad hello"})
            return None, ""
        libraries = [str(name) for name in header.get("custom_op_libraries") or []]
        version = self._version(
            saved_model,
            str(header.get("fingerprint", "")),
            list(tags),
            libraries,
            str(header.get("session_config") or ""),
        )
        if version.error:
            send_message(conn, {"ok": False, "code": "UNAVAILABLE", "error": version.error})
            return version, ""
        definition = version.signatures.get(name)
        if definition is None:
            error = f"SavedModel {saved_model} has no signature {name!r}"
            send_message(conn, {"ok": False, "code": "NOT_FOUND", "error": error})
            return version, ""
        send_message(conn, {"ok": True, "outputs": sorted(definition.outputs)})
        return version, name

    def _run(
        self,
        version: LoadedVersion,
        signature: str,
        arrays: dict[str, np.ndarray],
        header: dict[str, Any],
    ) -> dict[str, Any]:
        wanted = header.get("outputs")
        fetches = tuple(
            wanted
            if isinstance(wanted, list) and wanted
            else sorted(version.signatures[signature].outputs)
        )
        feeds = tuple(sorted(arrays))
        run = version.callable(signature, feeds, fetches)
        chunk = int(header.get("chunk") or 0)
        rows = min((len(a) for a in arrays.values() if a.ndim), default=0)
        if chunk <= 0 or rows <= chunk:
            return dict(
                zip(fetches, (np.asarray(v) for v in run(*[arrays[k] for k in feeds])), strict=True)
            )
        parts = [
            run(*[arrays[k][start : start + chunk] for k in feeds])
            for start in range(0, rows, chunk)
        ]
        return {
            name: np.concatenate([np.asarray(p[i]) for p in parts])
            for i, name in enumerate(fetches)
        }


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


def _preload() -> None:
    with contextlib.suppress(Exception):
        import_tensorflow()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve SavedModel signatures to Triton's stubs.")
    parser.add_argument("--socket", required=True, help="socket path, or @name for abstract")
    parser.add_argument("--lock", required=True, help="the starters' lock file (removed at exit)")
    parser.add_argument("--owner_pid", type=int, default=0, help="exit when this process exits")
    parser.add_argument("--idle_seconds", type=float, default=5.0)
    parser.add_argument("--intra_op_threads", type=int, default=0)
    parser.add_argument("--inter_op_threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"tf_worker[{os.getpid()}] %(levelname)s %(message)s",
    )

    listener = _listen(args.socket)
    inode = None if args.socket.startswith("@") else os.stat(args.socket).st_ino
    server = SignatureServer(args.intra_op_threads, args.inter_op_threads, args.idle_seconds)
    threading.Thread(target=_preload, name="import", daemon=True).start()
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
        server.close_idle_versions()
        if reason:
            break
        if server.idle_for() >= args.idle_seconds:
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
