"""Write Triton model directories for one SavedModel version, atomically.

Every version directory is assembled in a staging directory beside the repository and renamed into
place, so a crash never leaves a half-written model where Triton looks. Layout::

    <repo>/<model>__<signature>/config.pbtxt
    <repo>/<model>__<signature>/<version>/model.py      (tfsgate/runtime/runner_model.py)
    <repo>/<model>__<signature>/<version>/tf_worker.py  (tfsgate/runtime/tf_worker.py)
    <repo>/<model>__<signature>/<version>/runner.json   ({"saved_model": ..., "signature": ...})

The stubs of all signatures of one version share one TensorFlow worker process, found by the
SavedModel's real path and the ``fingerprint`` in runner.json (see tfsgate/runtime/tf_worker.py).
The runtime files are copied, never imported here: they run inside Triton.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import triton_config
from control_plane.converter.savedmodel import read_signatures
from tfsgate.core.naming import triton_model_name
from tfsgate.core.signatures import SignatureSpec

WORKER_FILE = "tf_worker.py"


def runtime_file(name: str) -> Path:
    """A file of the ``tfsgate.runtime`` package, the code that runs inside Triton."""
    return Path(str(importlib.resources.files("tfsgate.runtime").joinpath(name)))


@dataclass(frozen=True)
class ConvertedVersion:
    """What the converter made of one SavedModel version."""

    model: str
    version: int
    source_path: Path
    signatures: dict[str, SignatureSpec]
    triton_models: dict[str, str]  # signature name -> Triton model name


def _staging_dir(repository: Path) -> Path:
    staging = repository.parent / f".{repository.name}.staging"
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _replace_dir(staged: Path, target: Path) -> None:
    """Swap ``staged`` into ``target``; an old ``target`` is moved aside first, then removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        trash = staged.with_name(staged.name + ".old")
        os.replace(target, trash)
        os.replace(staged, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, target)


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


def runner_json(source: Path, signature: str, model: str, fingerprint: str) -> str:
    """What a runner needs; the signatures of one version share ``saved_model`` and
    ``fingerprint`` and therefore one worker."""
    runner = {
        "saved_model": str(source),
        "signature": signature,
        "model": model,
        "worker": WORKER_FILE,
        "fingerprint": fingerprint,
    }
    return json.dumps(runner)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


class SavedModelConverter:
    """SavedModel version directory -> one Triton model version per signature."""

    def __init__(self, repository: Path) -> None:
        self.repository = repository.resolve()

    def convert(
        self,
        model: str,
        version: int,
        source: Path,
    ) -> ConvertedVersion:
        """Write one Triton model per signature of the SavedModel at ``source``."""
        source = source.resolve()
        signatures = read_signatures(source)
        names = {sig: triton_model_name(model, sig) for sig in signatures}
        staging = _staging_dir(self.repository)
        fingerprint = files_fingerprint(source)
        for sig_name, triton_name in names.items():
            # Validate before touching the repository: unsupported dtypes raise here.
            triton_config.build_model_config(triton_name, model, signatures[sig_name], [version])
        for sig_name, triton_name in names.items():
            staged = Path(tempfile.mkdtemp(dir=staging, prefix=f"{triton_name}.{version}."))
            shutil.copyfile(runtime_file("runner_model.py"), staged / "model.py")
            shutil.copyfile(runtime_file(WORKER_FILE), staged / WORKER_FILE)
            (staged / "runner.json").write_text(runner_json(source, sig_name, model, fingerprint))
            _replace_dir(staged, self.repository / triton_name / str(version))
        return ConvertedVersion(model, version, source, signatures, names)

    def write_config(self, config: mc.ModelConfig) -> None:
        """Keep config.pbtxt equal to what the reconciler last pushed as the load override."""
        path = self.repository / config.name / "config.pbtxt"
        write_text_atomic(path, triton_config.to_text(config))

    def remove_version(self, triton_name: str, version: int) -> None:
        shutil.rmtree(self.repository / triton_name / str(version), ignore_errors=True)
