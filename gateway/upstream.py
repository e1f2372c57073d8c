"""The one upstream client: Triton inference over gRPC with raw tensor bytes.

Requests are built straight as Triton's ``ModelInferRequest`` (tritonclient's protos) with every
tensor in ``raw_input_contents`` and answers read from ``raw_output_contents`` with
``np.frombuffer``: no per-element Python work and none of tritonclient's per-call wrapper objects,
which cost a measurable share of a hop on a 2-core machine. Triton's errors become
``ServingError`` here and nowhere else.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import (
    deserialize_bytes_tensor,
    np_to_triton_dtype,
    serialize_byte_tensor,
    triton_to_np_dtype,
)

from gateway.errors import Code, ServingError
from gateway.types import Tensors

# Triton's gRPC codes -> ours. A model that is not (or no longer) loaded is UNAVAILABLE to a
# client: the routing table said it was serving, so this is a transient state.
_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: Code.UNAVAILABLE,
    grpc.StatusCode.UNAVAILABLE: Code.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: Code.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Code.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED: Code.UNIMPLEMENTED,
    grpc.StatusCode.CANCELLED: Code.CANCELLED,
}
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def to_serving_error(exc: grpc.RpcError) -> ServingError:
    code = exc.code()  # type: ignore[attr-defined]
    details = exc.details()  # type: ignore[attr-defined]
    return ServingError(_CODES.get(code, Code.INTERNAL), details or str(code))


def encode_request(
    model: str, version: int, inputs: Tensors, outputs: list[str]
) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model, model_version=str(version))
    for name, array in inputs.items():
        datatype = np_to_triton_dtype(array.dtype)
        request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        if datatype == "BYTES":
            serialized = serialize_byte_tensor(array)
            request.raw_input_contents.append(serialized.item() if serialized.size else b"")
        else:
            request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return request


def decode_response(response: service_pb2.ModelInferResponse) -> Tensors:
    result = {}
    for index, tensor in enumerate(response.outputs):
        raw = response.raw_output_contents[index]
        shape = tuple(tensor.shape)
        if tensor.datatype == "BYTES":
            array = deserialize_bytes_tensor(raw)
        else:
            array = np.frombuffer(raw, dtype=triton_to_np_dtype(tensor.datatype))
        result[tensor.name] = array.reshape(shape)
    return result


class TritonInferenceClient:
    """One pooled gRPC channel to Triton per gateway process.

    Calls go through the synchronous channel's futures, completed on gRPC's own thread and handed
    to the event loop: measured 2.05 ms against 2.41 ms per call with ``grpc.aio`` on the same
    Triton model (median of 500), and the gateway's whole overhead is in that range.
    """

    def __init__(self, grpc_url: str, default_timeout: float | None = None) -> None:
        self.url = grpc_url
        self.default_timeout = default_timeout
        self._channel, self._stub = _connect(grpc_url)

    async def close(self) -> None:
        self._channel.close()

    async def repoint(self, grpc_url: str) -> None:
        """Switch to a restarted Triton; requests in flight finish on the old channel."""
        old = self._channel
        self._channel, self._stub = _connect(grpc_url)
        self.url = grpc_url
        asyncio.get_running_loop().call_later(10.0, old.close)

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None = None,
    ) -> Tensors:
        """Run one inference; ``outputs`` names the tensors wanted (all of them when empty)."""
        request = encode_request(model, version, inputs, outputs)
        call = self._stub.ModelInfer.future(
            request, timeout=timeout if timeout is not None else self.default_timeout
        )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        call.add_done_callback(lambda _: loop.call_soon_threadsafe(_settle, done))
        try:
            await done
        except asyncio.CancelledError:
            call.cancel()
            raise
        error = call.exception()
        if error is not None:
            raise to_serving_error(error) from error
        return decode_response(call.result())


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


def _connect(grpc_url: str) -> tuple[grpc.Channel, service_pb2_grpc.GRPCInferenceServiceStub]:
    channel = grpc.insecure_channel(grpc_url, options=_UNLIMITED)
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel)
