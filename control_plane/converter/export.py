"""The export child: one SavedModel version -> an ONNX model and a parity verdict per signature.

Run as ``python -m control_plane.converter.export --saved_model DIR --out DIR ...`` by
``control_plane.converter.exporter``; it imports TensorFlow (without Keras: ``import_tensorflow``),
tf2onnx and ONNX Runtime, which no long-lived process of ours should hold. It writes
``<out>/<n>/model.onnx`` (plus external data for large models) for each signature ONNX Runtime
may serve, and ``<out>/verdict.json``::

    {"signatures": {name: {"runner": "onnxruntime"|"tensorflow", "max_abs_error", "parity_cases",
                           "fallback_reason", "parse", "onnx_dir", "input_dtypes"}},
     "seconds": ..., "versions": {...}}

The TensorFlow side of the parity check is the session the TensorFlow runner would serve (fed and
fetched by tensor names, no Python-side shape checks), and the ONNX side is the parser of
tfsgate/runtime/tf_example.py plus ONNX Runtime, as the ONNX runner serves it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow() -> Any:
    """TensorFlow without the Keras import of its ``__init__`` (1.3-1.5 s of a fresh home's path
    to its first prediction: ``tfsgate/runtime/tf_worker.py``'s ``import_tensorflow``), its
    logger quiet."""
    from tfsgate.runtime.tf_worker import import_tensorflow as without_keras

    tf = without_keras()
    tf.get_logger().setLevel("ERROR")
    return tf


def _variables_bytes(version_dir: Path) -> int:
    variables = version_dir / "variables"
    if not variables.is_dir():
        return 0
    return sum(p.stat().st_size for p in variables.iterdir() if p.is_file())


def _largest_variable(version_dir: Path) -> tuple[str, int]:
    """(name, bytes) of the SavedModel's largest variable, from the checkpoint index alone."""
    import tensorflow as tf

    prefix = version_dir / "variables" / "variables"
    if not (version_dir / "variables" / "variables.index").exists():
        return "", 0
    reader = tf.train.load_checkpoint(str(prefix))
    dtypes = reader.get_variable_to_dtype_map()
    largest = ("", 0)
    for name, shape in reader.get_variable_to_shape_map().items():
        size = int(np.prod(shape, dtype=np.int64)) * dtypes[name].size if shape else 0
        largest = max(largest, (name, size), key=lambda item: item[1])
    return largest


def _tensor_dtype_name(tensor: Any) -> str:
    from tensorflow.core.framework import types_pb2

    return str(types_pb2.DataType.Name(tensor.dtype.as_datatype_enum))


def _write_onnx(exported: Any, target: Path) -> int:
    """Write model.onnx (and external data); returns the bytes written."""
    target.mkdir(parents=True, exist_ok=True)
    data = exported.model.SerializeToString()
    (target / "model.onnx").write_bytes(data)
    # Large models: tf2onnx left the big tensors out of the model, referenced by file name
    # relative to model.onnx (ONNX's external data), and handed them over separately.
    for name, tensor in exported.external_files.items():
        if "/" in name or name.startswith("."):
            raise ValueError(f"unexpected external data location {name!r}")
        (target / name).write_bytes(tensor)
    return sum(p.stat().st_size for p in target.iterdir())


def _onnx_session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


PROTOBUF_LIMIT = 2**31 - 1
# Peak memory of a conversion per byte of variables: the session, the frozen constants, tf2onnx's
# copies and the ONNX tensors (measured: 23.7 GB for a 2.5 GB SavedModel of three tables).
MEMORY_PER_VARIABLE_BYTE = 10


def _available_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _not_converted(name: str, reason: str) -> dict[str, Any]:
    return {
        "runner": "tensorflow",
        "max_abs_error": None,
        "parity_cases": 0,
        "fallback_reason": f"not convertible: {reason}",
        "parse": None,
        "onnx_dir": None,
        "input_dtypes": {},
    }


def export_signature(
    session: Any,
    meta_graph: Any,
    name: str,
    target: Path,
    args: argparse.Namespace,
    large_model: bool,
) -> dict[str, Any]:
    from control_plane.converter import onnx_export, parity
    from tfsgate.runtime.tf_example import DenseParser

    verdict: dict[str, Any] = {
        "runner": "tensorflow",
        "max_abs_error": None,
        "parity_cases": 0,
        "fallback_reason": "",
        "parse": None,
        "onnx_dir": None,
        "input_dtypes": {},
    }
    graph = session.graph
    signature = meta_graph.signature_def[name]
    verdict["input_dtypes"] = {
        k: _tensor_dtype_name(graph.get_tensor_by_name(v.name)) for k, v in signature.inputs.items()
    }
    try:
        graph_def, plan = onnx_export.signature_graph(session, meta_graph, name, large_model)
        exported = onnx_export.to_onnx(graph_def, plan, args.opset, large_model)
        _write_onnx(exported, target)
        onnx = _onnx_session(target / "model.onnx", args.threads)
    except onnx_export.NotConvertible as exc:
        verdict["fallback_reason"] = f"not convertible: {exc}"
        return verdict
    except Exception as exc:  # noqa: BLE001 - anything else is a conversion failure with its text
        verdict["fallback_reason"] = f"conversion failed: {type(exc).__name__}: {exc}"
        return verdict
    parse = plan.parse
    verdict["parse"] = parse.to_json() if parse else None
    verdict["onnx_inputs"] = list(plan.onnx_inputs)
    fetch = sorted(plan.outputs)
    feed = sorted(plan.inputs)
    from tensorflow.core.protobuf import config_pb2

    options = config_pb2.CallableOptions(
        feed=[plan.inputs[k].name for k in feed], fetch=[plan.outputs[k].name for k in fetch]
    )
    # The TF runner's own path: no Python-side shape checks, TF's status texts.
    run_tf = session._make_callable_from_options(options)
    parser = DenseParser(parse.features, parse.node) if parse else None
    onnx_inputs = {i.name for i in onnx.get_inputs()}

    def tensorflow(feeds: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(fetch, run_tf(*[feeds[k] for k in feed]), strict=True))

    def onnxruntime(feeds: dict[str, Any]) -> dict[str, Any]:
        if parser is not None and parse is not None:
            feeds = parser.parse(feeds[parse.input])
        values = onnx.run(fetch, {k: v for k, v in feeds.items() if k in onnx_inputs})
        return dict(zip(fetch, values, strict=True))

    inputs = {
        k: parity.InputSpec(
            "string" if t.dtype.name == "string" else t.dtype.name,
            None
            if t.shape.rank is None
            else tuple(-1 if d is None else d for d in t.shape.as_list()),
        )
        for k, t in plan.inputs.items()
    }
    examples = (parse.input, parse.features) if parse else None
    result = parity.check(
        tensorflow,
        onnxruntime,
        parity.cases(inputs, args.max_batch, examples),
        args.atol,
        args.rtol,
    )
    verdict["max_abs_error"] = result.max_abs_error
    verdict["parity_cases"] = result.cases
    if not result.passed:
        verdict["fallback_reason"] = f"parity check failed: {result.reason}"
        return verdict
    verdict["runner"] = "onnxruntime"
    verdict["onnx_dir"] = target.name
    return verdict


def _translate_warmup(source: Path, inputs: dict[str, list[str]], out: Path) -> str:
    """Write the version's warm-up requests under ``out`` (see warmup.py); the error, if any.
    ``inputs``: signature name -> its input keys."""
    from control_plane.converter import warmup

    try:
        found = warmup.translate(source, inputs)
    except warmup.WarmupError as exc:
        warmup.write_error(out, str(exc))
        return str(exc)
    if found is not None:
        warmup.write(out, found)
    return ""


def _refusal(source: Path, large: bool) -> str:
    """Why this version is not converted at all ("" when it is), decided before TensorFlow
    loads it."""
    if not large:
        return ""
    total = _variables_bytes(source)
    needed, available = total * MEMORY_PER_VARIABLE_BYTE, _available_memory()
    if available and needed > available:
        # Rather than take the machine's memory from everything else (the kernel's OOM killer
        # chose this child at 23.7 GB on a 24 GB machine).
        return (
            f"converting {total / 2**30:.1f} GiB of variables needs about"
            f" {needed / 2**30:.0f} GiB of memory, {available / 2**30:.0f} GiB is available"
        )
    name, size = _largest_variable(source)
    if size >= PROTOBUF_LIMIT:
        # One ONNX tensor cannot exceed protobuf's 2 GB either, and tf2onnx copies tensors
        # through protobuf messages: measured on a 2.5 GB embedding table, it fails after 60 s
        # and 18 GB of memory.
        return (
            f"variable {name} is {size / 2**30:.1f} GiB: one ONNX tensor above protobuf's 2 GB"
            " limit is beyond tf2onnx (variables above 2 GB in all are converted with external"
            " data)"
        )
    return ""


def export(args: argparse.Namespace) -> dict[str, Any]:
    """One version: convert and check every signature, write verdict.json, return the report."""
    tf = import_tensorflow()

    from control_plane.converter import onnx_export
    from control_plane.converter.savedmodel import read_signatures

    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = Path(args.saved_model)
    tags = [t for t in args.tags.split(",") if t]
    if args.custom_op_libraries:
        from tfsgate.runtime.tf_worker import load_custom_op_libraries

        load_custom_op_libraries(args.custom_op_libraries.split(","))
    large = _variables_bytes(source) > args.large_model_bytes
    refuse = "" if args.no_convert else _refusal(source, large)
    verdicts: dict[str, Any] = {}
    if refuse:
        specs = read_signatures(source, tags)
        names = args.signatures or sorted(specs)
        verdicts = {name: _not_converted(name, refuse) for name in names}
        inputs = {name: sorted(spec.inputs) for name, spec in specs.items()}
        warmup_error = _translate_warmup(source, inputs, out / "warmup")
    else:
        session, meta_graph = onnx_export.load_session(str(source), tags)
        try:
            names = (
                []
                if args.no_convert
                else args.signatures
                or sorted(k for k in meta_graph.signature_def if not k.startswith("__"))
            )
            for index, name in enumerate(names):
                verdicts[name] = export_signature(
                    session, meta_graph, name, out / f"signature_{index}", args, large
                )
            inputs = {k: sorted(v.inputs) for k, v in meta_graph.signature_def.items()}
            warmup_error = _translate_warmup(source, inputs, out / "warmup")
        finally:
            session.close()
    import onnxruntime
    import tf2onnx

    report = {
        "signatures": verdicts,
        "warmup_error": warmup_error,
        "seconds": round(time.monotonic() - started, 3),
        "versions": {
            "tensorflow": tf.__version__,
            "tf2onnx": tf2onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
    }
    (out / "verdict.json").write_text(json.dumps(report, indent=1))
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tags", default="serve", help="comma-separated MetaGraph tags")
    parser.add_argument("--signatures", nargs="*", help="default: every signature")
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--max_batch", type=int, default=128)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--large_model_bytes",
        type=int,
        default=1536 << 20,
        help="variables above this: ONNX external data (protobuf stops at 2 GB)",
    )
    parser.add_argument(
        "--no_convert", action="store_true", help="only translate the warm-up requests"
    )
    parser.add_argument(
        "--custom_op_libraries", default="", help="comma-separated .so paths or packages"
    )
    return parser


def serve() -> int:
    """Jobs from stdin, one JSON list of arguments per line; one JSON line back per job
    (``{"ok": true}`` or ``{"ok": false, "error": ...}``). TensorFlow is imported once for a
    burst of versions (start-up with many models); the parent closes stdin when idle."""
    # Replies go to the original stdout; anything a library prints (ONNX Runtime logs to stdout)
    # goes to stderr instead of corrupting them.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import_tensorflow()
    # tf2onnx and ONNX Runtime are every job's first steps (after TensorFlow, as in a job):
    # imported now, a child started ahead of its work (Exporter.start) has them ready.
    import onnxruntime  # noqa: F401
    import tf2onnx  # noqa: F401

    parser = _parser()
    for line in sys.stdin:
        try:
            args = parser.parse_args(json.loads(line))
            export(args)
            reply: dict[str, Any] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - reported for this job; the next one runs
            traceback.print_exc()
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--serve"]:
        return serve()
    export(_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # noqa: BLE001 - the parent reads the last line of stderr as the reason
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    # TensorFlow's threads make interpreter shutdown slow; everything is written.
    os._exit(code)
