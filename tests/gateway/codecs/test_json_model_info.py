"""TF Serving REST status and metadata documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.codecs import json_model_info as model_info
from gateway.types import VersionStatus
from tests.support.signatures import spec
from tfsgate.core.signatures import SignatureSpec, TensorSpec

PREDICT = "tensorflow/serving/predict"
TESTDATA = Path("/work/shared/testdata/tfserving")


# --------------------------------------------------------------------------- status / metadata


def test_encode_model_status() -> None:
    body = model_info.encode_model_status(
        [VersionStatus(123, "AVAILABLE"), VersionStatus(7, "END", "UNKNOWN", "gone")]
    )
    assert orjson.loads(body) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "7",
                "state": "END",
                "status": {"error_code": "UNKNOWN", "error_message": "gone"},
            },
        ]
    }


def _signatures_from_reference(reference: dict[str, Any]) -> dict[str, SignatureSpec]:
    """Our SignatureSpecs for the signatures in TF Serving's metadata answer."""

    def tensors(infos: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, info in infos.items():
            shape_json = info["tensor_shape"]
            shape = (
                None
                if shape_json["unknown_rank"]
                else tuple(int(d["size"]) for d in shape_json["dim"])
            )
            out[key] = TensorSpec(key, info["name"], info["dtype"], shape)
        return out

    defs = reference["metadata"]["signature_def"]["signature_def"]
    return {
        name: SignatureSpec(name, d["method_name"], tensors(d["inputs"]), tensors(d["outputs"]))
        for name, d in defs.items()
    }


@pytest.mark.parametrize(
    ("filename", "model"),
    [
        ("half_plus_two_model_metadata.json", "default"),
        (
            "saved_model_half_plus_two_2_versions_metadata.json",
            "saved_model_half_plus_two_2_versions",
        ),
    ],
)
def test_metadata_matches_tf_serving_reference(filename: str, model: str) -> None:
    path = TESTDATA / filename
    if not path.exists():
        pytest.skip(f"TF Serving reference {path} is not available")
    reference = json.loads(path.read_text())
    signatures = _signatures_from_reference(reference)
    ours = orjson.loads(model_info.encode_model_metadata(model, 123, signatures))
    assert ours == reference
    # key order too, signature by signature (TF prints fields in proto order)
    ours_text = json.dumps(ours, indent=1)
    assert ours_text == json.dumps(reference, indent=1)


def test_metadata_for_unknown_rank_and_scalars() -> None:
    signature = SignatureSpec(
        "s", PREDICT, {"u": spec("u", "DT_STRING", None), "s": spec("s", shape=())}, {}
    )
    body = orjson.loads(model_info.encode_model_metadata("m", 1, {"s": signature}))
    inputs = body["metadata"]["signature_def"]["signature_def"]["s"]["inputs"]
    assert inputs["u"]["tensor_shape"] == {"dim": [], "unknown_rank": True}
    assert inputs["s"]["tensor_shape"] == {"dim": [], "unknown_rank": False}
    assert body["model_spec"] == {"name": "m", "signature_name": "", "version": "1"}
