"""The Triton configs of one converted version, built as the reconciler builds them (a shared
Triton model gets every signature it serves, prefixed), and calls by signature."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc as triton_grpc
from tritonclient.grpc import model_config_pb2 as mc

from control_plane.converter import triton_config
from control_plane.converter.writer import ConvertedVersion
from tfsgate.core.naming import is_shared, tensor_prefix

TYPES = {np.dtype(np.float32): "FP32", np.dtype(object): "BYTES"}


def version_configs(converted: ConvertedVersion) -> list[mc.ModelConfig]:
    grouped: dict[str, list[str]] = {}
    for signature, name in converted.triton_models.items():
        grouped.setdefault(name, []).append(signature)
    configs = []
    for name, signatures in sorted(grouped.items()):
        specs = {s: converted.signatures[s] for s in signatures}
        if is_shared(converted.model, name):
            prefixed = {tensor_prefix(s): spec for s, spec in specs.items()}
            config = triton_config.build_shared_config(
                name, converted.model, prefixed, [converted.version]
            )
        else:
            (spec,) = specs.values()
            config = triton_config.build_model_config(
                name, converted.model, spec, [converted.version]
            )
        configs.append(config)
    return configs


def infer_signature(
    client: triton_grpc.InferenceServerClient,
    triton_model: str,
    prefix: str,
    inputs: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """One call to ``triton_model`` with the signature's tensors under ``prefix``; the outputs
    by their signature keys."""
    tensors = []
    for name, value in inputs.items():
        tensor = triton_grpc.InferInput(prefix + name, list(value.shape), TYPES[value.dtype])
        tensor.set_data_from_numpy(value)
        tensors.append(tensor)
    result = client.infer(triton_model, tensors)
    names = [o.name for o in result.get_response().outputs]
    return {n[len(prefix) :]: result.as_numpy(n) for n in names}
