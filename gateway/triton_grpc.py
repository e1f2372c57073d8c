"""Triton's gRPC inference endpoint (``GRPCInferenceService/ModelInfer``) with raw tensor bytes.

Requests are built straight as Triton's ``ModelInferRequest`` (tritonclient's protos) with every
tensor in ``raw_input_contents`` and answers read from ``raw_output_contents`` with
``np.frombuffer``: no per-element Python work and none of tritonclient's per-call wrapper objects.
The channel is ``grpc.aio`` (the synchronous channel's futures measured 1.6 ms of gateway CPU per
REST predict against 1.06 ms with aio). Used for a Triton known only by its gRPC address
(``--triton_url`` without ``--triton_http_url``); the HTTP endpoint costs a third of the CPU per
call (``gateway/triton_http.py``).

A call is never cancelled and carries no deadline: Triton's gRPC frontend (2.51 here; server
issues #7368 and #8034 report it from 24.07) crashes when a ModelInfer call is cancelled, or its
deadline passes, while its answer is being completed (a SIGSEGV in ``pthread_mutex_lock`` on a
freed call state); 32 callers with 2 ms deadlines crashed 2.51 within 8 s here. So the caller's
deadline and cancellation are kept in the gateway: the caller gets DEADLINE_EXCEEDED (or is
cancelled) at its time, and Triton's call runs to its end with its answer dropped, as TF Serving
runs a request whose client has gone.
"""

from __future__ import annotations

import asyncio

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from gateway.triton_http import InstanceUnavailable, tensor_bytes, tensor_from_bytes
from gateway.types import Hold, Tensors
from tfsgate.core.defaults import TRITON_CHANNEL_OPTIONS
from tfsgate.core.status import Code, ServingError

# Triton's gRPC codes -> ours. A model that is not (or no longer) loaded is UNAVAILABLE to a
# client: the routing table said it was serving, so this is a transient state.
_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT: Code.INVALID_ARGUMENT,
    grpc.StatusCode.DEADLINE_EXCEEDED: Code.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Code.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED: Code.UNIMPLEMENTED,
    grpc.StatusCode.CANCELLED: Code.CANCELLED,
}
_UNLIMITED = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
# What an instance answers when it could not run the call: another instance may.
_ELSEWHERE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND})


def to_serving_error(exc: grpc.aio.AioRpcError) -> ServingError:
    message = exc.details() or str(exc.code())
    if exc.code() in _ELSEWHERE:
        return InstanceUnavailable(message)
    return ServingError(_CODES.get(exc.code(), Code.INTERNAL), message)


def encode_request(
    model: str, version: int, inputs: Tensors, outputs: list[str]
) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name=model, model_version=str(version))
    for name, array in inputs.items():
        datatype, raw = tensor_bytes(array)
        request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        request.raw_input_contents.append(bytes(raw))
    for name in outputs:
        request.outputs.add(name=name)
    return request


def decode_response(response: service_pb2.ModelInferResponse) -> Tensors:
    result = {}
    for index, tensor in enumerate(response.outputs):
        raw = response.raw_output_contents[index]
        result[tensor.name] = tensor_from_bytes(raw, tensor.datatype, tuple(tensor.shape))
    return result


def _retrieved(call: asyncio.Future[service_pb2.ModelInferResponse]) -> None:
    """A call whose caller left: its failure is nobody's to log."""
    if not call.cancelled():
        call.exception()


def _held(call: asyncio.Future[service_pb2.ModelInferResponse], hold: Hold | None) -> None:
    """A call given up runs on: ``hold`` is kept until it ends."""
    if hold is not None and not call.done():
        hold.keep()
        call.add_done_callback(lambda _: hold.release())


class GrpcTriton:
    """One pooled ``grpc.aio`` channel to one Triton's gRPC endpoint (``host:port``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._channel = grpc.aio.insecure_channel(
            url, options=[*_UNLIMITED, *TRITON_CHANNEL_OPTIONS]
        )
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)

    async def infer(
        self,
        model: str,
        version: int,
        inputs: Tensors,
        outputs: list[str],
        timeout: float | None,
        hold: Hold | None = None,
    ) -> Tensors:
        request = encode_request(model, version, inputs, outputs)
        # Its own task, shielded: the caller's cancellation or deadline leaves it running.
        call = asyncio.ensure_future(self._stub.ModelInfer(request))
        call.add_done_callback(_retrieved)
        try:
            if timeout is None:
                response = await asyncio.shield(call)
            else:
                async with asyncio.timeout(timeout):
                    response = await asyncio.shield(call)
        except TimeoutError:
            _held(call, hold)
            raise ServingError(Code.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except asyncio.CancelledError:
            _held(call, hold)
            raise
        except grpc.aio.AioRpcError as exc:
            raise to_serving_error(exc) from exc
        return decode_response(response)

    async def ready(self) -> bool:
        """Triton's ``ServerReady`` answered ready within a second."""
        try:
            answer = await self._stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.ready)

    async def close(self) -> None:
        await self._channel.close(grace=5.0)
