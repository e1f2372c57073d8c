"""Runs the export child (``control_plane.converter.export``) and reads its verdicts.

The child imports TensorFlow, tf2onnx and ONNX Runtime and exits when idle: the process calling
this never holds them. One export at a time (a lock): each peaks at 0.6-1.3 GB plus the model, and
two cores are all a small machine has.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUNNERS = ("auto", "tensorflow", "onnxruntime")
ONNXRUNTIME = "onnxruntime"
TENSORFLOW = "tensorflow"


class ExportError(RuntimeError):
    """The child crashed or timed out; every signature falls back to TensorFlow."""


@dataclass(frozen=True)
class ExportOptions:
    tags: tuple[str, ...] = ("serve",)
    atol: float = 1e-5
    rtol: float = 1e-4
    max_batch: int = 128
    opset: int = 17
    timeout: float = 1800.0
    # Variables above this make the ONNX model keep its weights in external data files
    # (protobuf messages, the ONNX model and TensorFlow's GraphDef among them, stop at 2 GB).
    large_model_bytes: int = 1536 << 20
    # --custom_op_libraries: registered in the export child before it loads the SavedModel.
    custom_op_libraries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignatureRunner:
    """Which runner serves one signature and the evidence for it (stored in the catalog)."""

    runner: str  # "onnxruntime" | "tensorflow"
    max_abs_error: float | None = None
    fallback_reason: str = ""
    parity_cases: int = 0
    parse: dict[str, Any] | None = None  # the ParseExample plan when the runner parses examples
    onnx_dir: str | None = None  # directory of model.onnx inside the export output
    onnx_inputs: tuple[str, ...] = ()  # what the ONNX graph takes (features, when parsed)
    input_dtypes: dict[str, str] = field(default_factory=dict)  # the graph's, by signature key

    def to_json(self) -> dict[str, Any]:
        """The catalog's and the admin API's view (without file locations)."""
        return {
            "runner": self.runner,
            "max_abs_error": self.max_abs_error,
            "fallback_reason": self.fallback_reason,
            "parity_cases": self.parity_cases,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignatureRunner:
        return cls(
            runner=data.get("runner", TENSORFLOW),
            max_abs_error=data.get("max_abs_error"),
            fallback_reason=data.get("fallback_reason", ""),
            parity_cases=int(data.get("parity_cases") or 0),
            parse=data.get("parse"),
            onnx_dir=data.get("onnx_dir"),
            onnx_inputs=tuple(data.get("onnx_inputs") or ()),
            input_dtypes=dict(data.get("input_dtypes") or {}),
        )


@dataclass(frozen=True)
class ExportResult:
    signatures: dict[str, SignatureRunner]
    warmup_error: str = ""  # the warm-up file exists but cannot be used


def tensorflow_only(reason: str) -> SignatureRunner:
    return SignatureRunner(TENSORFLOW, fallback_reason=reason)


def _arguments(source: Path, out: Path, options: ExportOptions, convert: bool = True) -> list[str]:
    return ([] if convert else ["--no_convert"]) + [
        "--saved_model",
        str(source),
        "--out",
        str(out),
        "--tags",
        ",".join(options.tags),
        "--atol",
        repr(options.atol),
        "--rtol",
        repr(options.rtol),
        "--max_batch",
        str(options.max_batch),
        "--opset",
        str(options.opset),
        "--large_model_bytes",
        str(options.large_model_bytes),
        "--custom_op_libraries",
        ",".join(options.custom_op_libraries),
    ]


class Exporter:
    """The export child, kept for a burst of versions and closed when idle.

    Importing TensorFlow costs 3 s and 560 MB; a start-up with 50 models would pay it 50 times
    with one child per version. So one child takes jobs over a pipe (``export --serve``) and is
    sent away ``idle_seconds`` after its last job: nothing of TensorFlow stays in this process or
    lingers beside it once the models are converted. Jobs run one at a time.
    """

    def __init__(self, idle_seconds: float = 15.0) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        """Start the child now, ahead of its first job: its TensorFlow import (3-5 s) then runs
        beside the caller's own start-up instead of after it. Sent away when idle, as always."""
        with self._lock:
            if self._child is None or self._child.poll() is not None:
                self._child = self._start()
            self._arm_idle_timer()

    def _arm_idle_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self.idle_seconds, self.close)
        self._timer.daemon = True
        self._timer.start()

    def export_version(
        self, source: Path, out: Path, options: ExportOptions, convert: bool = True
    ) -> ExportResult:
        """Convert and parity-check every signature of the SavedModel at ``source`` into ``out``
        (``convert`` False: only translate its warm-up requests, into ``out/warmup``)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            started = time.monotonic()
            try:
                reply = self._run(_arguments(source, out, options, convert), options.timeout)
            finally:
                self._arm_idle_timer()
        if not reply.get("ok"):
            raise ExportError(f"ONNX export failed: {reply.get('error', 'unknown error')}")
        report = json.loads((out / "verdict.json").read_text())
        log.info(
            "exported %s in %.1fs: %s",
            source,
            time.monotonic() - started,
            {k: v["runner"] for k, v in report["signatures"].items()},
        )
        return ExportResult(
            {k: SignatureRunner.from_json(v) for k, v in report["signatures"].items()},
            str(report.get("warmup_error") or ""),
        )

    def _start(self) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-m", "control_plane.converter.export", "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._stderr.clear()
        threading.Thread(target=self._drain, args=(child,), daemon=True).start()
        return child

    def _drain(self, child: subprocess.Popen[str]) -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())
                log.debug("export child: %s", line.rstrip())

    def _run(self, arguments: list[str], timeout: float) -> dict[str, Any]:
        if self._child is None or self._child.poll() is not None:
            self._child = self._start()
        child = self._child
        assert child.stdin is not None and child.stdout is not None
        ready: list[Any] = []
        try:
            child.stdin.write(json.dumps(arguments) + "\n")
            child.stdin.flush()
            ready, _, _ = select.select([child.stdout], [], [], timeout)
            line = child.stdout.readline() if ready else ""
        except OSError:
            line = ""
        if not line:
            self._kill()
            if not ready:
                raise ExportError(f"ONNX export timed out after {timeout:.0f}s")
            code = child.returncode
            died = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
            if code is not None and code < 0:  # its last log line says nothing about a signal
                raise ExportError(f"ONNX export failed: {died}")
            reason = self._stderr[-1] if self._stderr else died
            raise ExportError(f"ONNX export failed ({died}): {reason}")
        return dict(json.loads(line))

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is not None and child.poll() is None:
            child.kill()
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)

    def close(self) -> None:
        """Send the child away (closing its stdin ends its loop)."""
        child, self._child = self._child, None
        if child is None:
            return
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
