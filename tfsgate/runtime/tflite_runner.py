"""Triton python-backend model running one signature of a ``model.tflite`` with LiteRT in-process.

Served with ``--prefer_tflite_model`` when a version directory holds ``model.tflite``, as TF
Serving's ``TfLiteSession`` serves it. The converter copies this file as ``<version>/model.py``
beside ``model.tflite`` and ``runner.json``::

    {"runner": "tflite", "tflite": "model.tflite", "signature_runner": name | null,
     "inputs": {key: tensor name}, "outputs": {key: tensor name}, "evidence": {...}}

The keys are the signature's (control_plane/converter/tflite.py chooses them: the model's
``signature_defs_metadata``, its signature runners, or TF Serving's signature generated from the
main subgraph's tensors); the names are the interpreter's tensors. As in TF Serving, each call
resizes the inputs to what was fed (so any batch size runs), invokes, and reads the outputs with
the shapes the interpreter gives them.

Self-contained: the standard library, numpy and LiteRT (``ai_edge_litert``, no TensorFlow), so
each stub costs LiteRT's interpreter, not TensorFlow's 550 MB. Triton hands ``execute`` every
request of a dynamic batch; they run as one invoke (stacked along axis 0) when they stack, else one
by one. Config parameters (string values): ``tflite_threads`` (the interpreter's threads, default
1), ``scalar_tensors`` (TF scalars that travel as [1]).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]
from ai_edge_litert.interpreter import Interpreter


def _error(message: str, code: str = "INVALID_ARG") -> Any:
    value = getattr(pb_utils.TritonError, code, None)
    if value is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, value)


def _parameter(config: dict[str, Any], name: str, default: str) -> str:
    value = config.get("parameters", {}).get(name, {}).get("string_value", "")
    return value or default


class TfLiteSignature:
    """One signature of a TFLite model: feeds by signature key in, outputs by key out.

    ``runner`` names one of the model's own signature runners (LiteRT resizes its inputs on each
    call); without one, the keys map to tensors of the main subgraph, resized here as TF Serving's
    ``TfLiteSession`` does."""

    def __init__(
        self,
        path: str,
        inputs: dict[str, str],
        outputs: dict[str, str],
        runner: str | None = None,
        threads: int = 1,
    ) -> None:
        self._interpreter = Interpreter(model_path=path, num_threads=max(threads, 1))
        self._runner: Any = None
        if runner is not None:
            self._runner = self._interpreter.get_signature_runner(runner)
            details = {**self._runner.get_input_details(), **self._runner.get_output_details()}
            missing = [k for k in (*inputs, *outputs) if k not in details]
        else:
            details = {d["name"]: d for d in self._interpreter.get_input_details()}
            details.update({d["name"]: d for d in self._interpreter.get_output_details()})
            missing = [n for n in (*inputs.values(), *outputs.values()) if n not in details]
        if missing:
            raise ValueError(f"Unknown tensor '{missing[0]}'.")  # TF Serving's FixTfLiteTensorName
        key = (lambda k, n: k) if runner is not None else (lambda k, n: n)
        self._inputs = {k: details[key(k, n)] for k, n in inputs.items()}
        self._outputs = {k: details[key(k, n)]["index"] for k, n in outputs.items()}
        self._shapes: dict[int, tuple[int, ...]] = {}
        if self._runner is None:
            self._interpreter.allocate_tensors()

    def _array(self, key: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        if key not in feeds:
            raise ValueError(f"input '{key}' is missing")
        array = np.asarray(feeds[key])
        if array.dtype.kind != "O":
            array = array.astype(self._inputs[key]["dtype"], copy=False)
        return array

    def run(self, feeds: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        arrays = {key: self._array(key, feeds) for key in self._inputs}
        if self._runner is not None:
            outputs = self._runner(**arrays)
            return {key: outputs[key] for key in wanted}
        resized = False
        for key, detail in self._inputs.items():
            shape = arrays[key].shape
            if self._shapes.get(detail["index"], tuple(detail["shape"])) != shape:
                self._interpreter.resize_tensor_input(detail["index"], list(shape))
                self._shapes[detail["index"]] = shape
                resized = True
        if resized:
            self._interpreter.allocate_tensors()
        for key, detail in self._inputs.items():
            self._interpreter.set_tensor(detail["index"], arrays[key])
        self._interpreter.invoke()
        return {key: self._interpreter.get_tensor(self._outputs[key]) for key in wanted}


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runner = json.loads((version_dir / "runner.json").read_text())
        self._batched = int(config.get("max_batch_size", 0)) > 0
        self._inputs = [t["name"] for t in config["input"]]
        self._outputs = [t["name"] for t in config["output"]]
        self._scalars = set(filter(None, _parameter(config, "scalar_tensors", "").split(",")))
        self._signature = TfLiteSignature(
            str(version_dir / runner.get("tflite", "model.tflite")),
            dict(runner["inputs"]),
            dict(runner["outputs"]),
            runner.get("signature_runner"),
            int(_parameter(config, "tflite_threads", "1")),
        )

    def _feeds(self, request: Any) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self._inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is not None:
                array = tensor.as_numpy()
                feeds[name] = array.reshape(()) if name in self._scalars else array
        return feeds

    def _tensor(self, name: str, array: np.ndarray) -> Any:
        if array.dtype.kind in "OUS":
            flat = [v.encode() if isinstance(v, str) else bytes(v) for v in array.reshape(-1)]
            encoded = np.empty(len(flat), dtype=object)
            encoded[:] = flat
            array = encoded.reshape(array.shape)
        elif not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        if name in self._scalars:
            array = array.reshape(1)
        return pb_utils.Tensor(name, array)

    def _respond(self, outputs: dict[str, np.ndarray]) -> Any:
        return pb_utils.InferenceResponse(
            output_tensors=[self._tensor(k, v) for k, v in outputs.items()]
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        feeds = [self._feeds(r) for r in requests]
        wanted = [
            [n for n in self._outputs if n in set(r.requested_output_names())] or self._outputs
            for r in requests
        ]
        if self._batched and len(requests) > 1:
            stacked = self._stacked(feeds, wanted)
            if stacked is not None:
                return stacked
        responses = []
        for feed, names in zip(feeds, wanted, strict=True):
            try:
                responses.append(self._respond(self._signature.run(feed, names)))
            except Exception as exc:  # noqa: BLE001 - the interpreter refusing this input
                responses.append(pb_utils.InferenceResponse(error=_error(str(exc))))
        return responses

    def _stacked(self, feeds: list[dict[str, np.ndarray]], wanted: list[list[str]]) -> Any:
        """The whole dynamic batch as one invoke; None when the requests do not stack or the call
        fails, so each then runs alone and fails alone."""
        try:
            sizes = [len(next(iter(f.values()))) for f in feeds]
            stacked = {k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]}
            outputs = self._signature.run(stacked, self._outputs)
        except Exception:  # noqa: BLE001 - one bad request must not fail its neighbours
            return None
        bounds = np.cumsum([0, *sizes])
        if any(np.ndim(v) == 0 or len(v) != bounds[-1] for v in outputs.values()):
            return None
        return [
            self._respond({k: outputs[k][bounds[i] : bounds[i + 1]] for k in wanted[i]})
            for i in range(len(feeds))
        ]

    def finalize(self) -> None:
        self._signature = None  # type: ignore[assignment]
