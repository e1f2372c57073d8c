"""The runner files of a converted signature version: ``runner.json`` (what the stub inside Triton
needs to serve it, plus the evidence of the runner choice), the runtime code copied beside it, and
reading that evidence back ("is it converted, and by which runner?")."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.converter.exporter import ONNXRUNTIME, TENSORFLOW, SignatureRunner
from control_plane.converter.tflite import TFLITE, TFLITE_FILE

WORKER_FILE = "tf_worker.py"
RUNNER_FILE = "runner.json"


def runtime_file(name: str) -> Path:
    """A file of the ``tfsgate.runtime`` package, the code that runs inside Triton."""
    return Path(str(importlib.resources.files("tfsgate.runtime").joinpath(name)))


def files_fingerprint(version_dir: Path) -> str:
    """sha256 over relative paths, sizes and mtimes: cheap (no reads), and different whenever the
    SavedModel is rewritten in place, so stubs never reach a worker holding the old files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in version_dir.rglob("*") if p.is_file()):
        info = path.stat()
        digest.update(
            f"{path.relative_to(version_dir)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode()
        )
    return digest.hexdigest()


def runner_json(
    source: Path,
    signature: str,
    model: str,
    fingerprint: str,
    evidence: SignatureRunner,
    tags: tuple[str, ...] = ("serve",),
) -> str:
    """What a TensorFlow stub needs; the signatures of one version share ``saved_model``,
    ``fingerprint`` and ``tags`` and therefore one session in the worker."""
    runner = {
        "runner": TENSORFLOW,
        "saved_model": str(source),
        "signature": signature,
        "model": model,
        "worker": WORKER_FILE,
        "fingerprint": fingerprint,
        "tags": list(tags),
        "evidence": evidence.to_json(),
    }
    return json.dumps(runner)


def _onnx_runner(evidence: SignatureRunner, parse_only: bool = False) -> dict[str, Any]:
    return {
        "runner": ONNXRUNTIME,
        "onnx": "model.onnx",
        "parse": evidence.parse,
        "parse_only": parse_only,
        "onnx_inputs": list(evidence.onnx_inputs),
        "evidence": evidence.to_json(),
    }


def onnx_runner_json(evidence: SignatureRunner, parse_only: bool = False) -> str:
    return json.dumps(_onnx_runner(evidence, parse_only))


@dataclass(frozen=True)
class SharedEntry:
    """One signature in a shared Triton model's version (tfsgate/core/naming.py)."""

    folder: str  # its graph's directory in the version
    prefix: str  # of its tensor names in Triton
    inputs: tuple[str, ...]  # its input keys
    evidence: SignatureRunner


def shared_runner_json(signatures: dict[str, SharedEntry]) -> str:
    return json.dumps(
        {
            "runner": ONNXRUNTIME,
            "signatures": {
                name: {
                    **_onnx_runner(entry.evidence),
                    "dir": entry.folder,
                    "prefix": entry.prefix,
                    "inputs": list(entry.inputs),
                }
                for name, entry in sorted(signatures.items())
            },
        }
    )


def tflite_runner_json(plan: dict[str, Any], evidence: SignatureRunner) -> str:
    return json.dumps(
        {"runner": TFLITE, "tflite": TFLITE_FILE, **plan, "evidence": evidence.to_json()}
    )


def read_runner(version_dir: Path, signature: str = "") -> SignatureRunner | None:
    """The evidence written with a converted signature version (None: not converted by us);
    in a shared Triton model's version, that of ``signature`` (None when it is not there)."""
    try:
        data = json.loads((version_dir / RUNNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (version_dir / "model.py").exists():
        return None
    if "signatures" in data:
        data = data["signatures"].get(signature)
        if data is None:
            return None
    evidence = data.get("evidence") or {"runner": data.get("runner", TENSORFLOW)}
    return SignatureRunner.from_json(
        {**evidence, "parse": data.get("parse"), "onnx_inputs": data.get("onnx_inputs")}
    )
