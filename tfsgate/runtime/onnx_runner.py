"""Triton python-backend model running signatures' ONNX graphs with ONNX Runtime in-process.

The converter copies this file as ``<version>/model.py`` beside ``runner.json``, ``tf_example.py``
for graphs that start with ParseExample, and either one signature's ``model.onnx`` (and
``model.onnx.data`` for large models) or, in a model's shared Triton model, one directory per
signature holding its graph: runner.json's ``signatures`` then names each one's directory, tensor
keys and the prefix its tensors carry in Triton (``<signature>/``; tfsgate/core/naming.py). One
stub process then serves every such signature of the version, as TF Serving serves them from one
session. Self-contained: the standard library, numpy, onnxruntime (and google.protobuf through
tf_example.py); it may run in a Triton container without tfsgate.

Triton hands ``execute`` every request of a dynamic batch; those of one signature run as one
``InferenceSession.run`` (inputs concatenated along axis 0, outputs split back by rows), at most
``execution_batch_size`` rows per call (TF Serving's max_batch_size: Triton's batcher may form
larger batches, and a single request may be larger than that), so a 3,000,000-row request costs
one ONNX call per ``execution_batch_size`` rows inside one Triton call.

With ``"parse_only": true`` in runner.json the model only parses (``<signature>__parse``, the
first step of a GPU Triton's ensemble) and returns the dense features.

Config parameters (string values): ``intra_op_threads``, ``inter_op_threads`` (ONNX Runtime's
pools, default 1 each), ``execution_batch_size`` (0: no limit), ``max_request_rows`` with
``large_batch_splitting`` (TF Serving's batching refuses a request larger than max_batch_size unless
large batch splitting is on), ``scalar_tensors`` (TF scalars that travel as [1]).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]


def _sibling(path: Path, name: str) -> Any:
    """Import a file copied beside this one (the stub does not put this directory on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _error(message: str, code: str = "INVALID_ARG") -> Any:
    value = getattr(pb_utils.TritonError, code, None)
    if value is None:
        return pb_utils.TritonError(message)
    return pb_utils.TritonError(message, value)


def _parameter(config: dict[str, Any], name: str, default: str) -> str:
    value = config.get("parameters", {}).get(name, {}).get("string_value", "")
    return value or default


class RequestError(ValueError):
    """This request alone is refused (INVALID_ARGUMENT)."""


class _Graph:
    """One signature: its session (none when it only parses), its tf.Example parser, and the
    Triton names of its tensors (``prefix`` + key)."""

    def __init__(
        self,
        version_dir: Path,
        runner: dict[str, Any],
        config: dict[str, Any],
        prefix: str,
        inputs: list[str],
    ) -> None:
        folder = version_dir / runner.get("dir", "")
        self.prefix = prefix
        self.inputs = inputs  # the signature's keys
        self._session: Any = None
        if runner.get("parse_only"):
            self.outputs = [t["name"] for t in config["output"]]
            self._onnx_inputs = set(self.outputs)
        else:
            options = ort.SessionOptions()
            options.intra_op_num_threads = int(_parameter(config, "intra_op_threads", "1"))
            options.inter_op_num_threads = int(_parameter(config, "inter_op_threads", "1"))
            # Spinning pool threads would burn cores that other models and Triton need.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
            self._session = ort.InferenceSession(
                str(folder / runner.get("onnx", "model.onnx")),
                options,
                providers=["CPUExecutionProvider"],
            )
            self.outputs = [o.name for o in self._session.get_outputs()]
            self._onnx_inputs = {i.name for i in self._session.get_inputs()}
        self._parser: Any = None
        parse = runner.get("parse")
        if parse:
            module = sys.modules.get("_tfsgate_tf_example") or _sibling(
                version_dir / "tf_example.py", "_tfsgate_tf_example"
            )
            features = [module.DenseFeature.from_json(f) for f in parse["features"]]
            self._parser = module.DenseParser(features, parse["node"])
            self._examples_input = parse["input"]

    def parse(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._parser is not None:
            feeds = self._parser.parse(feeds[self._examples_input])
        return {k: v for k, v in feeds.items() if k in self._onnx_inputs}

    def run(self, feeds: dict[str, np.ndarray], batched: bool, chunk: int) -> dict[str, np.ndarray]:
        if self._session is None:  # parse only: the features are the answer
            return {k: feeds[k] for k in self.outputs}
        rows = len(next(iter(feeds.values()))) if batched and feeds else 0
        if not chunk or rows <= chunk:
            return dict(zip(self.outputs, self._session.run(self.outputs, feeds), strict=True))
        parts = [
            self._session.run(self.outputs, {k: v[start : start + chunk] for k, v in feeds.items()})
            for start in range(0, rows, chunk)
        ]
        return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(self.outputs)}

    def close(self) -> None:
        self._session = None


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        version_dir = Path(args["model_repository"]) / args["model_version"]
        runner = json.loads((version_dir / "runner.json").read_text())
        self._batched = int(config.get("max_batch_size", 0)) > 0
        shared = runner.get("signatures")
        if shared is None:  # one signature: its tensors are the config's, unprefixed
            inputs = [t["name"] for t in config["input"]]
            self._graphs = [_Graph(version_dir, runner, config, "", inputs)]
        else:
            self._graphs = [
                _Graph(version_dir, entry, config, entry["prefix"], entry["inputs"])
                for entry in shared.values()
            ]
        # Triton input name -> (its signature's graph, its key there)
        self._by_input = {g.prefix + k: (g, k) for g in self._graphs for k in g.inputs}
        scalars = _parameter(config, "scalar_tensors", "")
        self._scalars = set(filter(None, scalars.split(",")))
        self._chunk = int(_parameter(config, "execution_batch_size", "0"))
        self._max_rows = int(_parameter(config, "max_request_rows", "0"))
        self._splitting = _parameter(config, "large_batch_splitting", "false") == "true"

    # -- one request -> its signature and ONNX feeds --------------------------------------------
    def _feeds(self, request: Any) -> tuple[_Graph, dict[str, np.ndarray]]:
        graph: _Graph | None = None
        feeds = {}
        for tensor in request.inputs():
            name = tensor.name()
            found = self._by_input.get(name)
            if found is None:
                raise RequestError(f"unexpected input {name!r}")
            if graph is not None and found[0] is not graph:
                raise RequestError("the inputs of a request belong to one signature")
            graph = found[0]
            array = tensor.as_numpy()
            feeds[found[1]] = array.reshape(()) if name in self._scalars else array
        if graph is None:
            if len(self._graphs) > 1:
                raise RequestError("a request names no input")
            graph = self._graphs[0]
        rows = len(next(iter(feeds.values()))) if self._batched and feeds else 0
        if self._max_rows and not self._splitting and rows > self._max_rows:
            # TF Serving's batching scheduler (shared_batch_scheduler.h).
            raise RequestError(
                f"Task size {rows} is larger than maximum input batch size {self._max_rows}"
            )
        return graph, graph.parse(feeds)

    # -- execution -----------------------------------------------------------------------------
    def _tensor(self, name: str, array: np.ndarray) -> Any:
        if array.dtype.kind in "OU":
            # ONNX Runtime returns strings as str; Triton's BYTES want bytes.
            flat = [v.encode() if isinstance(v, str) else v for v in array.reshape(-1).tolist()]
            encoded = np.empty(len(flat), dtype=object)
            encoded[:] = flat
            array = encoded.reshape(array.shape)
        elif not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        if name in self._scalars:
            array = array.reshape(1)
        return pb_utils.Tensor(name, array)

    def _respond(self, graph: _Graph, outputs: dict[str, np.ndarray], wanted: set[str]) -> Any:
        named = ((graph.prefix + k, v) for k, v in outputs.items())
        return pb_utils.InferenceResponse(
            output_tensors=[self._tensor(k, v) for k, v in named if not wanted or k in wanted]
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        by_graph: dict[int, list[tuple[int, dict[str, np.ndarray]]]] = {}
        graphs: dict[int, _Graph] = {}
        for i, request in enumerate(requests):
            try:
                graph, feed = self._feeds(request)
            except Exception as exc:  # noqa: BLE001 - this request's error only (a bad tf.Example)
                responses[i] = pb_utils.InferenceResponse(error=_error(str(exc)))
                continue
            graphs[id(graph)] = graph
            by_graph.setdefault(id(graph), []).append((i, feed))
        wanted = [set(r.requested_output_names()) for r in requests]
        for key, feeds in by_graph.items():
            graph = graphs[key]
            if self._batched and len(feeds) > 1 and self._stacked(graph, feeds, wanted, responses):
                continue
            for i, feed in feeds:
                try:
                    outputs = graph.run(feed, self._batched, self._chunk)
                    responses[i] = self._respond(graph, outputs, wanted[i])
                except Exception as exc:  # noqa: BLE001 - ONNX Runtime refusing this input
                    responses[i] = pb_utils.InferenceResponse(error=_error(str(exc)))
        return responses

    def _stacked(
        self,
        graph: _Graph,
        feeds: list[tuple[int, dict[str, np.ndarray]]],
        wanted: list[set[str]],
        responses: list[Any],
    ) -> bool:
        """One signature's requests of the dynamic batch as one call; False (nothing answered)
        when they do not stack or the call fails, so each then runs alone and fails alone."""
        try:
            sizes = [len(next(iter(f.values()))) for _, f in feeds]
            stacked = {k: np.concatenate([f[k] for _, f in feeds]) for k in feeds[0][1]}
            outputs = graph.run(stacked, self._batched, self._chunk)
        except Exception:  # noqa: BLE001 - one bad request must not fail its neighbours
            return False
        bounds = np.cumsum([0, *sizes])
        if any(np.ndim(v) == 0 or len(v) != bounds[-1] for v in outputs.values()):
            return False
        for j, (i, _) in enumerate(feeds):
            part = {k: v[bounds[j] : bounds[j + 1]] for k, v in outputs.items()}
            responses[i] = self._respond(graph, part, wanted[i])
        return True

    def finalize(self) -> None:
        for graph in self._graphs:
            graph.close()
