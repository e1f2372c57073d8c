"""TF Serving's REST model information: the status and metadata JSON documents.

Both are protobuf messages printed as proto JSON by TF Serving (field names kept, defaults printed,
int64 versions as strings); they are written here directly from the data plane's types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from gateway.types import VersionStatus
from tfsgate.core.signatures import SignatureSpec, TensorSpec


def encode_model_status(versions: Iterable[VersionStatus]) -> bytes:
    """GetModelStatusResponse as TF Serving prints it."""
    entries = [
        {
            "version": str(v.version),
            "state": v.state,
            "status": {"error_code": v.error_code, "error_message": v.error_message},
        }
        for v in versions
    ]
    return orjson.dumps({"model_version_status": entries})


def encode_model_metadata(
    model_name: str, version: int, signatures: Mapping[str, SignatureSpec]
) -> bytes:
    """GetModelMetadataResponse for the REST ``/metadata`` path: ``signature_def`` nested twice
    (the metadata map key, then the SignatureDefMap field), signatures in the given order."""
    signature_defs = {name: _signature_def_json(sig) for name, sig in signatures.items()}
    document = {
        "model_spec": {"name": model_name, "signature_name": "", "version": str(version)},
        "metadata": {"signature_def": {"signature_def": signature_defs}},
    }
    return orjson.dumps(document)


def _signature_def_json(signature: SignatureSpec) -> dict[str, Any]:
    return {
        "inputs": {key: _tensor_info_json(spec) for key, spec in signature.inputs.items()},
        "outputs": {key: _tensor_info_json(spec) for key, spec in signature.outputs.items()},
        "method_name": signature.method_name,
        "defaults": {},
    }


def _tensor_info_json(spec: TensorSpec) -> dict[str, Any]:
    if spec.shape is None:
        shape: dict[str, Any] = {"dim": [], "unknown_rank": True}
    else:
        shape = {"dim": [{"size": str(d), "name": ""} for d in spec.shape], "unknown_rank": False}
    return {"dtype": spec.dtype, "tensor_shape": shape, "name": spec.tensor_name}
