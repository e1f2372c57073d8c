"""Read a SavedModel's signatures from ``saved_model.pb`` with protobuf alone (no TensorFlow)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tfsgate.core import protos
from tfsgate.core.signatures import SignatureSpec, TensorSpec

SERVE_TAG = "serve"


class SavedModelError(ValueError):
    """The directory is not a SavedModel we can serve; the message says why."""


def _load_proto(version_dir: Path) -> protos.saved_model_pb2.SavedModel:
    saved_model = protos.saved_model_pb2.SavedModel()
    binary, text = version_dir / "saved_model.pb", version_dir / "saved_model.pbtxt"
    try:
        if binary.exists():
            saved_model.ParseFromString(binary.read_bytes())
        elif text.exists():
            text_format.Parse(text.read_text(), saved_model)
        else:
            raise SavedModelError(f"no saved_model.pb in {version_dir}")
    except SavedModelError:
        raise
    except Exception as exc:  # protobuf raises DecodeError, ParseError, UnicodeError...
        raise SavedModelError(f"cannot parse SavedModel in {version_dir}: {exc}") from exc
    return saved_model


def _tensor_spec(key: str, info: protos.meta_graph_pb2.TensorInfo) -> TensorSpec:
    shape = info.tensor_shape
    # No tensor_shape at all (SavedModels of TF 1.0, e.g. TF Serving's half_plus_three) means
    # unknown, not scalar.
    known = info.HasField("tensor_shape") and not shape.unknown_rank
    dims = tuple(int(d.size) for d in shape.dim) if known else None
    dtype = protos.types_pb2.DataType.Name(info.dtype)
    return TensorSpec(key=key, tensor_name=info.name, dtype=dtype, shape=dims)


def _fed_dtypes(graph_def: Any) -> dict[str, int]:
    """Placeholder name -> the dtype it takes. A signature may declare another: TF Serving's
    ``saved_model_half_plus_three`` declares its serialized examples DT_FLOAT, and TF Serving feeds
    them as strings anyway (its regressor never checks the input dtype), so Triton must carry the
    placeholder's type."""
    return {
        node.name: node.attr["dtype"].type
        for node in graph_def.node
        if node.op in ("Placeholder", "PlaceholderWithDefault") and "dtype" in node.attr
    }


def _input_spec(
    key: str, info: protos.meta_graph_pb2.TensorInfo, fed: dict[str, int]
) -> TensorSpec:
    spec = _tensor_spec(key, info)
    node, _, port = info.name.partition(":")
    dtype = fed.get(node)
    if dtype is not None and port in ("", "0") and dtype != info.dtype:
        return replace(spec, dtype=protos.types_pb2.DataType.Name(dtype))
    return spec


def read_signatures(
    version_dir: Path, tags: Iterable[str] | str = (SERVE_TAG,)
) -> dict[str, SignatureSpec]:
    """The signature_defs of the meta graph with exactly ``tags`` (TF Serving's
    ``--saved_model_tags``, default ``serve``), as TF's loader picks it."""
    wanted = {tags} if isinstance(tags, str) else set(tags)
    saved_model = _load_proto(version_dir)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == wanted:
            break
    else:
        raise SavedModelError(f"no meta graph tagged {','.join(sorted(wanted))!r} in {version_dir}")
    fed = _fed_dtypes(meta_graph.graph_def)
    signatures = {}
    for name, sig in meta_graph.signature_def.items():
        if name == "__saved_model_init_op":
            continue  # TF2 stores its initializer as a pseudo-signature; TF Serving hides it
        signatures[name] = SignatureSpec(
            name=name,
            method_name=sig.method_name,
            inputs={k: _input_spec(k, v, fed) for k, v in sig.inputs.items()},
            outputs={k: _tensor_spec(k, v) for k, v in sig.outputs.items()},
        )
    if not signatures:
        raise SavedModelError(f"SavedModel in {version_dir} has no signatures")
    return signatures


def checksum(version_dir: Path) -> str:
    """sha256 over relative paths, sizes and contents: unchanged versions are not re-converted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in version_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(version_dir)).encode())
        digest.update(path.stat().st_size.to_bytes(8, "little"))
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
