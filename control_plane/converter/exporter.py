"""Runs the export child (``control_plane.converter.export``) and reads its verdict.

The child imports TensorFlow, tf2onnx and ONNX Runtime and exits: the process calling this never
holds them. One export at a time per process (a lock): each peaks at 0.6-1.3 GB and two cores are
all a small machine has.
"""

from __future__ import annotations

import json
import logging
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
_LOCK = threading.Lock()


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


@dataclass(frozen=True)
class SignatureRunner:
    """Which runner serves one signature and the evidence for it (stored in the catalog)."""

    runner: str  # "onnxruntime" | "tensorflow"
    max_abs_error: float | None = None
    fallback_reason: str = ""
    parity_cases: int = 0
    parse: dict[str, Any] | None = None  # the ParseExample plan when the runner parses examples
    onnx_dir: str | None = None  # directory of model.onnx inside the export output
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
            input_dtypes=dict(data.get("input_dtypes") or {}),
        )


def tensorflow_only(reason: str) -> SignatureRunner:
    return SignatureRunner(TENSORFLOW, fallback_reason=reason)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def export_version(source: Path, out: Path, options: ExportOptions) -> dict[str, SignatureRunner]:
    """Convert and parity-check every signature of the SavedModel at ``source`` into ``out``."""
    command = [
        sys.executable,
        "-m",
        "control_plane.converter.export",
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
    ]
    with _LOCK:
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=options.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"ONNX export timed out after {options.timeout:.0f}s") from exc
    verdict_file = out / "verdict.json"
    if done.returncode != 0 or not verdict_file.exists():
        reason = _last_line(done.stderr) or f"exit code {done.returncode}"
        raise ExportError(f"ONNX export failed: {reason}")
    report = json.loads(verdict_file.read_text())
    log.info(
        "exported %s in %.1fs: %s",
        source,
        time.monotonic() - started,
        {k: v["runner"] for k, v in report["signatures"].items()},
    )
    return {k: SignatureRunner.from_json(v) for k, v in report["signatures"].items()}
