"""Triton python-backend model for one SavedModel signature; TensorFlow runs in a shared worker.

The converter copies this file as ``<version>/model.py`` with ``tf_worker.py`` and ``runner.json``
(``{"saved_model", "signature", "model", "worker", "fingerprint", "tags"}``) beside it. A stub that
imported TensorFlow would cost about 550 MB per (signature, version); this one imports only the
standard library, numpy and ``triton_python_backend_utils`` (about 40 MB) and forwards each call to
the one TensorFlow worker process of its Triton server, which it starts if no stub has yet (see
``tf_worker.py``). The file stays self-contained: it may run in a Triton container without tfsgate.

With dynamic batching Triton hands ``execute`` several requests at once; for a batched signature
their inputs are stacked into one call and the outputs split back per request.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]

# TensorFlow status name -> TritonError code attribute; older python backends lack codes.
_TRITON_CODES = {
    "INVALID_ARGUMENT": "INVALID_ARG",
    "OUT_OF_RANGE": "INVALID_ARG",
    "FAILED_PRECONDITION": "INVALID_ARG",
    "NOT_FOUND": "NOT_FOUND",
    "ALREADY_EXISTS": "ALREADY_EXISTS",
    "UNIMPLEMENTED": "UNSUPPORTED",
    "UNAVAILABLE": "UNAVAILABLE",
    "CANCELLED": "CANCELLED",
    "INTERNAL": "INTERNAL",
}


def _load_worker_module(path: Path) -> ModuleType:
    """Import the sibling ``tf_worker.py`` by path: the stub does not put this directory on
    sys.path, and the module must not be confused with any installed one."""
    spec = importlib.util.spec_from_file_location("_tfsgate_tf_worker", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def triton_error(code: str, message: str) -> Any:
    attribute = _TRITON_CODES.get(code)
    value = getattr(pb_utils.TritonError, attribute, None) if attribute else None
    if value is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, value)


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runner = json.loads((version_dir / "runner.json").read_text())
        worker = _load_worker_module(version_dir / runner.get("worker", "tf_worker.py"))
        self._worker = worker
        self._batched = int(config.get("max_batch_size", 0)) > 0
        self._inputs = [t["name"] for t in config["input"]]
        self._outputs = [t["name"] for t in config["output"]]
        parameters = config.get("parameters", {})

        def parameter(name: str, default: str) -> str:
            return parameters.get(name, {}).get("string_value", "") or default

        # TF scalars that Triton carries as [1] (see triton_config.SCALARS_PARAMETER).
        self._scalars = set(filter(None, parameter("scalar_tensors", "").split(",")))
        # At most this many rows per session run (TF Serving's max_batch_size); 0: no limit.
        self._chunk = int(parameter("execution_batch_size", "0")) if self._batched else 0
        self._max_rows = int(parameter("max_request_rows", "0"))
        self._splitting = parameter("large_batch_splitting", "false") == "true"
        threads = (
            int(parameter("tf_intra_op_threads", "0")),
            int(parameter("tf_inter_op_threads", "0")),
        )
        # The stub's parent is Triton: the worker exits with it. python3 from PATH is the
        # interpreter Triton's stub uses too (the embedded Triton puts our venv first).
        self._client = worker.WorkerClient(
            saved_model=runner["saved_model"],
            signature=runner["signature"],
            worker_file=str(version_dir / runner.get("worker", "tf_worker.py")),
            fingerprint=runner.get("fingerprint", ""),
            python=shutil.which("python3") or sys.executable,
            tags=runner.get("tags") or ["serve"],
            threads=threads,
            # --custom_op_libraries: loaded by the worker before the SavedModel.
            custom_op_libraries=list(filter(None, parameter("custom_op_libraries", "").split(","))),
            session_config=parameter("tf_session_config", ""),
        )
        try:
            self._client.connect()
        except worker.WorkerError as exc:
            # Triton reports an exception from initialize as the model's load failure reason.
            raise RuntimeError(exc.message) from None

    def _feeds(self, request: Any) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self._inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                array = tensor.as_numpy()
                feeds[name] = array.reshape(()) if name in self._scalars else array
        return feeds

    def _run(self, feeds: dict[str, np.ndarray], wanted: set[str]) -> dict[str, np.ndarray]:
        names = [n for n in self._outputs if n in wanted] if wanted else self._outputs
        return self._client.run(feeds, names, self._chunk)

    def _respond(self, outputs: dict[str, np.ndarray], wanted: set[str]) -> Any:
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor(k, self._wire(k, v))
                for k, v in outputs.items()
                if not wanted or k in wanted
            ]
        )

    def _wire(self, name: str, array: np.ndarray) -> np.ndarray:
        if name in self._scalars:
            return array.reshape(1)
        return array if array.flags.c_contiguous else array.copy(order="C")

    def _error(self, exc: Exception) -> Any:
        if isinstance(exc, self._worker.WorkerError):
            return pb_utils.InferenceResponse(error=triton_error(exc.code, exc.message))
        return pb_utils.InferenceResponse(error=triton_error("INTERNAL", str(exc)))

    def _too_large(self, feed: dict[str, np.ndarray]) -> str:
        """TF Serving's batching refuses a task larger than max_batch_size unless it may split
        it (shared_batch_scheduler.h); "" when the request may run."""
        if not self._max_rows or self._splitting or not self._batched or not feed:
            return ""
        rows = len(next(iter(feed.values())))
        if rows <= self._max_rows:
            return ""
        return f"Task size {rows} is larger than maximum input batch size {self._max_rows}"

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds = [self._feeds(r) for r in requests]
        wanted = [set(r.requested_output_names()) for r in requests]
        refusals = [self._too_large(f) for f in feeds]
        if any(refusals):
            return [
                pb_utils.InferenceResponse(error=triton_error("INVALID_ARGUMENT", why))
                if why
                else self._answer(feed, names)
                for feed, names, why in zip(feeds, wanted, refusals, strict=True)
            ]
        if self._batched and len(requests) > 1:
            try:
                return self._execute_stacked(feeds, wanted)
            except Exception:  # noqa: BLE001 - one bad request must not fail its neighbours
                pass
        return [self._answer(feed, names) for feed, names in zip(feeds, wanted, strict=True)]

    def _answer(self, feed: dict[str, np.ndarray], names: set[str]) -> Any:
        try:
            return self._respond(self._run(feed, names), names)
        except Exception as exc:  # noqa: BLE001 - reported to the caller as Triton's error
            return self._error(exc)

    def _execute_stacked(self, feeds: list[dict[str, np.ndarray]], wanted: list[set[str]]) -> Any:
        sizes = [len(next(iter(f.values()))) for f in feeds]
        stacked = {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}
        union = set().union(*wanted) if all(wanted) else set()
        outputs = self._run(stacked, union)
        bounds = np.cumsum([0, *sizes])
        if any(np.ndim(v) == 0 or len(v) != bounds[-1] for v in outputs.values()):
            raise ValueError("an output does not follow the batch dimension")
        return [
            self._respond({k: v[bounds[i] : bounds[i + 1]] for k, v in outputs.items()}, wanted[i])
            for i in range(len(feeds))
        ]

    def finalize(self) -> None:
        self._client.close()
