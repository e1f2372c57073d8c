"""Write Triton model directories for one SavedModel version, atomically.

Every version directory is assembled in a staging directory beside the repository and renamed into
place, so a crash never leaves a half-written model where Triton looks. Each signature is served by
the runner the export child chose for it (control_plane/converter/export.py): ONNX Runtime when its
ONNX conversion passed the parity check, else TensorFlow. Layout::

    <repo>/<model>__<signature>/config.pbtxt
    ONNX Runtime on a CPU Triton: one Triton model for the model's batched signatures, one for the
    unbatched (``<model>__.unbatched``; ``_placement``), tensors prefixed ``<signature>/``
    (tfsgate/core/naming.py):
    <repo>/<model>/<version>/model.py                    (tfsgate/runtime/onnx_runner.py)
    <repo>/<model>/<version>/signatures/<signature>/model.onnx   (+ model.onnx.data if large)
    <repo>/<model>/<version>/runner.json                 (every signature's entry, runner_files.py)
    ONNX Runtime otherwise:
    <repo>/<model>__<signature>/<version>/model.py       (tfsgate/runtime/onnx_runner.py)
    <repo>/<model>__<signature>/<version>/model.onnx     (+ model.onnx.data for large models)
    <repo>/<model>__<signature>/<version>/tf_example.py  (signatures that start with ParseExample)
    TensorFlow:
    <repo>/<model>__<signature>/<version>/model.py       (tfsgate/runtime/runner_model.py)
    <repo>/<model>__<signature>/<version>/tf_worker.py   (tfsgate/runtime/tf_worker.py)
    TFLite (--prefer_tflite_model and a model.tflite in the version directory, see tflite.py):
    <repo>/<model>__<signature>/<version>/model.py       (tfsgate/runtime/tflite_runner.py)
    <repo>/<model>__<signature>/<version>/model.tflite
    all:
    <repo>/<model>__<signature>/<version>/runner.json    (what the runner needs + the evidence,
                                                          runner_files.py)

The stubs of all signatures of one version share one TensorFlow worker process, found by the
SavedModel's real path and the ``fingerprint`` in runner.json (see tfsgate/runtime/tf_worker.py).
The runtime files are copied, never imported here: they run inside Triton.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import triton_config, warmup
from control_plane.converter.batching import PER_MODEL_FILE, BatchingConfigError, read_per_model
from control_plane.converter.exporter import (
    ONNXRUNTIME,
    TENSORFLOW,
    Exporter,
    ExportError,
    ExportOptions,
    SignatureRunner,
    tensorflow_only,
)
from control_plane.converter.runner_files import (
    RUNNER_FILE,
    WORKER_FILE,
    SharedEntry,
    files_fingerprint,
    onnx_runner_json,
    read_runner,
    runner_json,
    runtime_file,
    shared_runner_json,
    tflite_runner_json,
)
from control_plane.converter.savedmodel import SavedModelError, read_signatures
from control_plane.converter.tflite import TFLITE, TFLITE_FILE, has_tflite, read_tflite
from tfsgate.core.naming import (
    is_shared,
    safe_part,
    shared_model_name,
    tensor_prefix,
    triton_model_name,
)
from tfsgate.core.signatures import SignatureSpec

log = logging.getLogger(__name__)
MISSING_OP = "Op type not registered"
LIBRARY_FAILED = "cannot load custom op library"  # tf_worker.load_custom_op_libraries


def missing_op_reason(error: str) -> str:
    """TensorFlow's "Op type not registered 'X' in binary ..." sentence, naming the op, and how
    to load it here; or why a --custom_op_libraries entry failed to load."""
    if MISSING_OP not in error:
        return error[error.find(LIBRARY_FAILED) :]
    sentence = error[error.find(MISSING_OP) :].split(". ", 1)[0]
    return f"{sentence}. Load the library that registers it with --custom_op_libraries."


class ConversionRefused(ValueError):
    """The model's runner setting cannot be honoured (e.g. onnxruntime on a signature that failed
    its parity check); the message carries the figures."""


@dataclass(frozen=True)
class ConvertedVersion:
    """What the converter made of one SavedModel version."""

    model: str
    version: int
    source_path: Path
    signatures: dict[str, SignatureSpec]
    triton_models: dict[str, str]  # signature name -> Triton model name
    runners: dict[str, SignatureRunner] = field(default_factory=dict)


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


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def refusal(runners: dict[str, SignatureRunner]) -> str:
    """Why ``runner: onnxruntime`` cannot be honoured for these signatures ("" when it can)."""
    refused = []
    for name, runner in sorted(runners.items()):
        if runner.runner == ONNXRUNTIME:
            continue
        error = "" if runner.max_abs_error is None else f" (max_abs_error {runner.max_abs_error:g})"
        refused.append(f"signature {name!r}: {runner.fallback_reason}{error}")
    if not refused:
        return ""
    return "runner onnxruntime refused: " + "; ".join(refused)


class SavedModelConverter:
    """SavedModel version directory -> Triton model versions serving its signatures."""

    def __init__(
        self,
        repository: Path,
        export: ExportOptions | None = None,
        exporter: Exporter | None = None,
        flavor: str = "cpu",
        prefer_tflite: bool = False,
        per_model_batching: bool = False,
    ) -> None:
        self.repository = repository.resolve()
        self.export = export or ExportOptions()
        self.exporter = exporter or Exporter()
        self.flavor = flavor  # "gpu": also the composing models of gpu.py's ensembles
        self.prefer_tflite = prefer_tflite  # --prefer_tflite_model
        # --enable_per_model_batching_parameters with --enable_batching: a version's
        # batching_params.pbtxt must parse, as TF Serving's load requires then.
        self.per_model_batching = per_model_batching

    def serves_tflite(self, source: Path) -> bool:
        """TF Serving's choice: the version's model.tflite when preferred and present."""
        return self.prefer_tflite and has_tflite(source)

    def convert(
        self,
        model: str,
        version: int,
        source: Path,
        runner: str = "auto",
    ) -> ConvertedVersion:
        """Write the Triton models serving the signatures of the SavedModel at ``source``.

        ``runner``: auto (ONNX Runtime where the conversion passes its parity check), tensorflow
        (no conversion), onnxruntime (every signature must pass, else ``ConversionRefused``).
        A TFLite version (``serves_tflite``) is served by LiteRT whatever the setting."""
        source = source.resolve()
        if self.serves_tflite(source):
            return self._convert_tflite(model, version, source)
        signatures = read_signatures(source, self.export.tags)
        self._check_batching_params(source)
        names = {sig: triton_model_name(model, sig) for sig in signatures}
        for sig_name, triton_name in names.items():
            # Validate before touching the repository: unsupported dtypes raise here.
            triton_config.build_model_config(triton_name, model, signatures[sig_name], [version])
        staging = _staging_dir(self.repository)
        exported = Path(tempfile.mkdtemp(dir=staging, prefix=f".export.{version}."))
        try:
            runners = self._runners(signatures, source, exported, runner)
            if runner == ONNXRUNTIME and (reason := refusal(runners)):
                raise ConversionRefused(reason)
            self._place_warmup(exported / "warmup", model, version)
            fingerprint = files_fingerprint(source)
            names = self._placement(model, signatures, runners)
            for shared in {n for n in names.values() if is_shared(model, n)}:
                together = {s: runners[s] for s, n in names.items() if n == shared}
                self._stage_shared(staging, source, exported, shared, version, together, signatures)
            for sig_name, triton_name in names.items():
                if is_shared(model, triton_name):
                    continue
                staged = Path(tempfile.mkdtemp(dir=staging, prefix=f"{triton_name}.{version}."))
                self._copy_batching_params(source, staged)
                evidence = runners[sig_name]
                if evidence.runner == ONNXRUNTIME and evidence.onnx_dir:
                    self._stage_onnx(staged, exported / evidence.onnx_dir, evidence)
                    if self.flavor == "gpu" and evidence.parse:
                        self._stage_ensemble_steps(staging, staged, triton_name, version, evidence)
                else:
                    shutil.copyfile(runtime_file("runner_model.py"), staged / "model.py")
                    shutil.copyfile(runtime_file(WORKER_FILE), staged / WORKER_FILE)
                    text = runner_json(
                        source, sig_name, model, fingerprint, evidence, self.export.tags
                    )
                    (staged / RUNNER_FILE).write_text(text)
                _replace_dir(staged, self.repository / triton_name / str(version))
        finally:
            shutil.rmtree(exported, ignore_errors=True)
        return ConvertedVersion(model, version, source, signatures, names, runners)

    def _placement(
        self,
        model: str,
        signatures: dict[str, SignatureSpec],
        runners: dict[str, SignatureRunner],
    ) -> dict[str, str]:
        """Signature -> Triton model. What ONNX Runtime serves in a CPU Triton's python backend
        shares one of the model's two shared Triton models (batched or not): one stub process
        per version for all of those signatures, as TF Serving has one session per version (a
        stub costs about 68 MB, mostly the interpreter, numpy and ONNX Runtime; a session about
        9). The rest (the TensorFlow and TFLite runners, a GPU Triton's backends, signatures
        without inputs, which a request could not be told apart by) get one each."""
        placed = {}
        for name, spec in signatures.items():
            evidence = runners[name]
            together = (
                self.flavor != "gpu"
                and evidence.runner == ONNXRUNTIME
                and bool(evidence.onnx_dir)
                and bool(spec.inputs)
            )
            shared = shared_model_name(model, spec.batched)
            placed[name] = shared if together else triton_model_name(model, name)
        return placed

    def _stage_shared(
        self,
        staging: Path,
        source: Path,
        exported: Path,
        name: str,
        version: int,
        signatures: dict[str, SignatureRunner],
        specs: dict[str, SignatureSpec],
    ) -> None:
        """``<repo>/<shared name>/<version>``: one onnx_runner.py serving ``signatures``, each
        graph in a directory of its own, and runner.json naming them with their tensor prefix."""
        staged = Path(tempfile.mkdtemp(dir=staging, prefix=f"{name}.{version}."))
        self._copy_batching_params(source, staged)
        shutil.copyfile(runtime_file("onnx_runner.py"), staged / "model.py")
        placed = {}
        for signature, evidence in signatures.items():
            folder = f"signatures/{safe_part(signature)}"  # apart from the version's files
            (staged / folder).mkdir(parents=True)
            for path in (exported / str(evidence.onnx_dir)).iterdir():
                os.replace(path, staged / folder / path.name)
            if evidence.parse:
                shutil.copyfile(runtime_file("tf_example.py"), staged / "tf_example.py")
            inputs = tuple(sorted(specs[signature].inputs))
            placed[signature] = SharedEntry(folder, tensor_prefix(signature), inputs, evidence)
        (staged / RUNNER_FILE).write_text(shared_runner_json(placed))
        _replace_dir(staged, self.repository / name / str(version))

    def _check_batching_params(self, source: Path) -> None:
        """A version's batching_params.pbtxt must parse when it is used (TF Serving fails the
        load otherwise)."""
        if not self.per_model_batching:
            return
        try:
            read_per_model(source)
        except BatchingConfigError as exc:
            raise SavedModelError(str(exc)) from None

    @staticmethod
    def _copy_batching_params(source: Path, staged: Path) -> None:
        """Kept beside the runner for --enable_per_model_batching_parameters (reconciler/configs)."""
        if (source / PER_MODEL_FILE).is_file():
            shutil.copyfile(source / PER_MODEL_FILE, staged / PER_MODEL_FILE)

    def _convert_tflite(self, model: str, version: int, source: Path) -> ConvertedVersion:
        signatures, plans = read_tflite(source)
        names = {sig: triton_model_name(model, sig) for sig in signatures}
        for sig_name, triton_name in names.items():
            triton_config.build_model_config(triton_name, model, signatures[sig_name], [version])
        staging = _staging_dir(self.repository)
        shutil.rmtree(self.warmup_dir(model, version), ignore_errors=True)  # none for TFLite
        evidence = SignatureRunner(TFLITE)
        self._check_batching_params(source)
        for sig_name, triton_name in names.items():
            staged = Path(tempfile.mkdtemp(dir=staging, prefix=f"{triton_name}.{version}."))
            self._copy_batching_params(source, staged)
            shutil.copyfile(runtime_file("tflite_runner.py"), staged / "model.py")
            shutil.copyfile(source / TFLITE_FILE, staged / TFLITE_FILE)
            text = tflite_runner_json(plans[sig_name].to_json(), evidence)
            (staged / RUNNER_FILE).write_text(text)
            _replace_dir(staged, self.repository / triton_name / str(version))
        runners = {sig: evidence for sig in signatures}
        return ConvertedVersion(model, version, source, signatures, names, runners)

    def _runners(
        self, signatures: dict[str, SignatureSpec], source: Path, out: Path, runner: str
    ) -> dict[str, SignatureRunner]:
        """The runner of each signature; the export child also translates the warm-up file."""
        if runner == TENSORFLOW:
            forced = tensorflow_only("the model's runner setting is tensorflow")
            if (source / warmup.WARMUP_FILE).exists():
                try:
                    self.exporter.export_version(source, out, self.export, convert=False)
                except ExportError as exc:
                    log.warning("%s: warm-up requests not translated: %s", source, exc)
            return {s: forced for s in signatures}
        try:
            found = self.exporter.export_version(source, out, self.export)
        except ExportError as exc:
            if MISSING_OP in str(exc) or LIBRARY_FAILED in str(exc):
                # TensorFlow itself could not load it: neither would the worker.
                raise SavedModelError(missing_op_reason(str(exc))) from None
            # Our converter failed, not the model: TensorFlow serves it, without warm-up.
            log.warning("%s: %s; TensorFlow serves every signature, no warm-up", source, exc)
            return {s: tensorflow_only(str(exc)) for s in signatures}
        missing = tensorflow_only("the export child did not report this signature")
        return {s: found.signatures.get(s, missing) for s in signatures}

    def _stage_ensemble_steps(
        self,
        staging: Path,
        staged: Path,
        triton_name: str,
        version: int,
        evidence: SignatureRunner,
    ) -> None:
        """A GPU Triton's ensemble steps: ``<name>__parse`` (parse-only python runner) and
        ``<name>__onnx`` (the graph for the onnxruntime backend), see gpu.py."""
        from control_plane.converter.gpu import ONNX_SUFFIX, PARSE_SUFFIX

        parse = Path(tempfile.mkdtemp(dir=staging, prefix=f"{triton_name}.parse.{version}."))
        shutil.copyfile(runtime_file("onnx_runner.py"), parse / "model.py")
        shutil.copyfile(runtime_file("tf_example.py"), parse / "tf_example.py")
        (parse / RUNNER_FILE).write_text(onnx_runner_json(evidence, parse_only=True))
        _replace_dir(parse, self.repository / (triton_name + PARSE_SUFFIX) / str(version))
        graph = Path(tempfile.mkdtemp(dir=staging, prefix=f"{triton_name}.onnx.{version}."))
        runner_files = {"model.py", RUNNER_FILE, "tf_example.py"}
        for path in staged.iterdir():  # model.onnx and its external data, if any
            if path.is_file() and path.name not in runner_files:
                shutil.copyfile(path, graph / path.name)
        _replace_dir(graph, self.repository / (triton_name + ONNX_SUFFIX) / str(version))

    def warmup_dir(self, model: str, version: int) -> Path:
        """Where a version's translated warm-up requests live: beside the repository, not in it
        (Triton never reads them; the reconciler replays them)."""
        base = self.repository.parent / f".{self.repository.name}.warmup"
        return base / triton_model_name(model, "") / str(version)

    def _place_warmup(self, translated: Path, model: str, version: int) -> None:
        target = self.warmup_dir(model, version)
        if translated.is_dir():
            staged = translated.rename(translated.with_name(f".warmup.{model}.{version}"))
            _replace_dir(staged, target)
        else:
            shutil.rmtree(target, ignore_errors=True)

    def version_files(self, triton_name: str, version: int) -> dict[str, Path]:
        """Every file of one Triton model version, by its path relative to the model directory
        (``<version>/model.py``, ...), for pushing it to a remote Triton through the repository
        API's file overrides (issue 10)."""
        root = self.repository / triton_name
        version_dir = root / str(version)
        return {str(p.relative_to(root)): p for p in sorted(version_dir.rglob("*")) if p.is_file()}

    @staticmethod
    def _stage_onnx(staged: Path, onnx_dir: Path, evidence: SignatureRunner) -> None:
        for path in onnx_dir.iterdir():
            os.replace(path, staged / path.name)
        shutil.copyfile(runtime_file("onnx_runner.py"), staged / "model.py")
        if evidence.parse:
            shutil.copyfile(runtime_file("tf_example.py"), staged / "tf_example.py")
        (staged / RUNNER_FILE).write_text(onnx_runner_json(evidence))

    def close(self) -> None:
        """Stop the export child now rather than when it turns idle."""
        self.exporter.close()

    def is_converted(
        self, model: str, version: int, signatures: Iterable[str], source: Path | None = None
    ) -> bool:
        """Whether every signature of the version has its runner and evidence in the repository
        (and, given the version's ``source``, from the file --prefer_tflite_model chooses)."""
        tflite = self.serves_tflite(source) if source is not None else None
        # A GPU Triton has no shared models.
        shared = (
            [] if self.flavor == "gpu" else [shared_model_name(model, b) for b in (True, False)]
        )
        for sig in signatures:
            found = read_runner(self.repository / triton_model_name(model, sig) / str(version))
            for name in shared:
                found = found or read_runner(self.repository / name / str(version), sig)
            if found is None or (tflite is not None and (found.runner == TFLITE) != tflite):
                return False
        return True

    def write_config(self, config: mc.ModelConfig) -> None:
        """Keep config.pbtxt equal to what the reconciler last pushed as the load override."""
        path = self.repository / config.name / "config.pbtxt"
        write_text_atomic(path, triton_config.to_text(config))
