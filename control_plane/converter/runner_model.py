"""Triton python-backend model that executes one SavedModel signature with TensorFlow.

The converter copies this file as ``<version>/model.py`` and writes ``<version>/runner.json``
beside it (``{"saved_model": path, "signature": name}``), so the file is self-contained: it
may only import the standard library, numpy, TensorFlow and Triton's
``triton_python_backend_utils``.

With dynamic batching Triton hands ``execute`` several requests at once; for a batched signature
their inputs are stacked into one TensorFlow call and the outputs split back per request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runner = json.loads((version_dir / "runner.json").read_text())
        self._tf = tf
        self._batched = int(config.get("max_batch_size", 0)) > 0
        self._inputs = {t["name"]: t for t in config["input"]}
        self._outputs = [t["name"] for t in config["output"]]
        # Keep the loaded object alive: the concrete function refers to its variables.
        self._loaded = tf.saved_model.load(runner["saved_model"], tags=["serve"])
        self._function = self._loaded.signatures[runner["signature"]]

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {k: self._tf.constant(v) for k, v in feeds.items()}
        results = self._function(**tensors)
        return {k: results[k].numpy() for k in self._outputs}

    def _feeds(self, request: Any) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self._inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                feeds[name] = tensor.as_numpy()
        return feeds

    def _respond(self, outputs: dict[str, np.ndarray], wanted: set[str]) -> Any:
        tensors = [pb_utils.Tensor(k, np.ascontiguousarray(v)) for k, v in outputs.items()]
        return pb_utils.InferenceResponse(
            output_tensors=[t for t in tensors if not wanted or t.name() in wanted]
        )

    def _error(self, exc: Exception) -> Any:
        message = getattr(exc, "message", None) or str(exc)
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(message))

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds = [self._feeds(r) for r in requests]
        wanted = [set(r.requested_output_names()) for r in requests]
        if self._batched and len(requests) > 1:
            try:
                return self._execute_stacked(feeds, wanted)
            except Exception:  # noqa: BLE001 - one bad request must not fail its neighbours
                pass
        responses = []
        for feed, names in zip(feeds, wanted, strict=True):
            try:
                responses.append(self._respond(self._run(feed), names))
            except Exception as exc:  # noqa: BLE001 - reported to the caller as Triton's error
                responses.append(self._error(exc))
        return responses

    def _execute_stacked(self, feeds: list[dict[str, np.ndarray]], wanted: list[set[str]]) -> Any:
        sizes = [len(next(iter(f.values()))) for f in feeds]
        stacked = {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}
        outputs = self._run(stacked)
        bounds = np.cumsum([0, *sizes])
        return [
            self._respond({k: v[bounds[i] : bounds[i + 1]] for k, v in outputs.items()}, wanted[i])
            for i in range(len(feeds))
        ]

    def finalize(self) -> None:
        self._function = None
        self._loaded = None
