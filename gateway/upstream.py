"""The one upstream client: Triton inference over ``tritonclient.grpc.aio``.

Payloads travel as raw bytes (``raw_input_contents``); Triton's errors become ``ServingError`` here
and nowhere else.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc.aio as triton_grpc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from gateway.errors import Code, ServingError
from gateway.types import Tensors

# Triton's gRPC status words -> our codes. A model that is not (or no longer) loaded is UNAVAILABLE
# to a client: the routing table said it was serving, so this is a transient state.
_STATUS_TO_CODE = {
    "StatusCode.INVALID_ARGUMENT": Code.INVALID_ARGUMENT,
    "StatusCode.NOT_FOUND": Code.UNAVAILABLE,
    "StatusCode.UNAVAILABLE": Code.UNAVAILABLE,
    "StatusCode.DEADLINE_EXCEEDED": Code.DEADLINE_EXCEEDED,
    "StatusCode.RESOURCE_EXHAUSTED": Code.RESOURCE_EXHAUSTED,
    "StatusCode.UNIMPLEMENTED": Code.UNIMPLEMENTED,
    "StatusCode.CANCELLED": Code.CANCELLED,
}


def to_serving_error(exc: InferenceServerException) -> ServingError:
    code = _STATUS_TO_CODE.get(str(exc.status()), Code.INTERNAL)
    return ServingError(code, exc.message() or str(exc))


class TritonInferenceClient:
    """Pooled gRPC channel to Triton; one instance per gateway process."""

    def __init__(self, grpc_url: str, default_timeout: float | None = None) -> None:
        self.url = grpc_url
        self.default_timeout = default_timeout
        self._client = _connect(grpc_url)

    async def close(self) -> None:
        await self._client.close()

    async def repoint(self, grpc_url: str) -> None:
        """Switch to a restarted Triton; requests in flight finish on the old channel."""
        old, self._client, self.url = self._client, _connect(grpc_url), grpc_url
        await old.close()

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None = None,
    ) -> Tensors:
        """Run one inference; ``outputs`` names the tensors wanted (all of them when empty)."""
        infer_inputs = []
        for name, array in inputs.items():
            infer_input = triton_grpc.InferInput(
                name, list(array.shape), np_to_triton_dtype(array.dtype)
            )
            infer_input.set_data_from_numpy(array)
            infer_inputs.append(infer_input)
        requested = [triton_grpc.InferRequestedOutput(name) for name in outputs] or None
        try:
            result = await self._client.infer(
                model,
                infer_inputs,
                model_version=str(version),
                outputs=requested,
                client_timeout=timeout if timeout is not None else self.default_timeout,
            )
        except InferenceServerException as exc:
            raise to_serving_error(exc) from exc
        response = result.get_response()
        return {out.name: _as_array(result, out.name) for out in response.outputs}


def _connect(grpc_url: str) -> triton_grpc.InferenceServerClient:
    unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    return triton_grpc.InferenceServerClient(grpc_url, channel_args=unlimited)


def _as_array(result: triton_grpc.InferResult, name: str) -> np.ndarray:
    array = result.as_numpy(name)
    if array is None:
        raise ServingError(Code.INTERNAL, f"Triton returned no data for output {name}")
    return array
