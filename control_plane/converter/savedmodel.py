"""Read a SavedModel's signatures from ``saved_model.pb`` with protobuf alone (no TensorFlow)."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
    dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
    dtype = protos.types_pb2.DataType.Name(info.dtype)
    return TensorSpec(key=key, tensor_name=info.name, dtype=dtype, shape=dims)


def read_signatures(version_dir: Path, tag: str = SERVE_TAG) -> dict[str, SignatureSpec]:
    """The signature_defs of the meta graph tagged ``serve`` (TF Serving's default tag set)."""
    saved_model = _load_proto(version_dir)
    for meta_graph in saved_model.meta_graphs:
        if tag in meta_graph.meta_info_def.tags:
            break
    else:
        raise SavedModelError(f"no meta graph tagged '{tag}' in {version_dir}")
    signatures = {}
    for name, sig in meta_graph.signature_def.items():
        if name == "__saved_model_init_op":
            continue  # TF2 stores its initializer as a pseudo-signature; TF Serving hides it
        signatures[name] = SignatureSpec(
            name=name,
            method_name=sig.method_name,
            inputs={k: _tensor_spec(k, v) for k, v in sig.inputs.items()},
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
