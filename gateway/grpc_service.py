"""TF Serving's gRPC services (PredictionService, ModelService) over the data plane.

Servicers translate messages and make one data-plane call; errors are mapped once, by the
wrapper every method is registered with (``guarded``), from ``ServingError`` to the gRPC status with the same TF code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any, Protocol

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health, health_pb2

from gateway import grpc_convert as convert
from gateway import metrics
from gateway.dataplane import DataPlane
from gateway.grpc_h2 import Http2GrpcServer
from gateway.request_ids import accept_request_id
from gateway.types import ClassifyResult, ModelRef
from tfsgate.core import protos
from tfsgate.core.status import Code, ServingError, invalid_argument

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 2**31 - 1  # TF Serving accepts messages up to 2 GB


class GrpcSettings(Protocol):
    host: str
    port: int
    grpc_socket_path: str
    enable_serialization_as_tensor_content: bool


class ConfigReloader(Protocol):
    async def reload_config(self, config: Any) -> None: ...


# gRPC method -> the method label shared with REST's verbs.
_METHOD_NAMES = {
    "Predict": "predict",
    "Classify": "classify",
    "Regress": "regress",
    "MultiInference": "multi_inference",
    "GetModelMetadata": "metadata",
    "GetModelStatus": "status",
    "HandleReloadConfigRequest": "reload_config",
    "Check": "health",
    "Watch": "health",
}


# (request id, route key) of the call being served; set by guarded(), read by servicers.
_CALL: ContextVar[tuple[str, str]] = ContextVar("tfsgate_grpc_call", default=("", ""))


# The last metadata read and its (x-request-id, x-route-key): the door hands a client's calls
# the same metadata object while their headers repeat (grpc_h2's Context).
_last_headers: tuple[Any, str, str] | None = None


def _call_headers(metadata: Any) -> tuple[str, str]:
    global _last_headers
    last = _last_headers
    if last is not None and last[0] is metadata:
        return accept_request_id(last[1]), last[2]
    request_id = route_key = ""
    for key, value in metadata or ():
        if key == "x-request-id":
            request_id = value if isinstance(value, str) else ""
        elif key == "x-route-key":
            route_key = value if isinstance(value, str) else ""
    _last_headers = (metadata, request_id, route_key)
    return accept_request_id(request_id), route_key


def _routed(ref: ModelRef) -> ModelRef:
    route_key = _CALL.get()[1]
    return replace(ref, route_key=route_key) if route_key else ref


Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def guarded(method_path: str, inner: Handler) -> Handler:
    """One unary method: ``ServingError`` -> its gRPC code; anything else -> INTERNAL.

    It also gives every call a request id (the client's ``x-request-id`` metadata, or a new one),
    sent back in trailing metadata on success and error alike. Built once per method at
    registration (not per call, as a server interceptor would): the grpc.aio server then finds
    the handler in C and calls it with no Python lookup or wrapper objects per call.
    """
    method = _METHOD_NAMES.get(method_path.rsplit("/", 1)[-1], "other")

    async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        spec = getattr(request, "model_spec", None)
        model = spec.name if spec is not None else ""
        code = Code.OK
        headers = _call_headers(context.invocation_metadata())
        _CALL.set(headers)
        context.set_trailing_metadata((("x-request-id", headers[0]),))
        try:
            return await inner(request, context)
        except ServingError as exc:
            code = exc.code
            await context.abort(exc.grpc_status, exc.message)
        except grpc.aio.AbortError:
            raise  # the method aborted the call itself (grpc's health Check: NOT_FOUND)
        except Exception as exc:  # noqa: BLE001 - never leak a traceback as UNKNOWN
            log.exception("gRPC %s failed", method_path)
            code = Code.INTERNAL
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        finally:
            metrics.observe("grpc", method, model, code, time.perf_counter() - started)

    return call


def _serializer(response_class: Any) -> Callable[[Any], bytes]:
    """The class's serializer, passing through an answer a servicer serialized itself
    (``convert.predict_answer``'s large tensors)."""
    serialize = response_class.SerializeToString

    def serializer(answer: Any) -> bytes:
        return answer if type(answer) is bytes else serialize(answer)  # type: ignore[no-any-return]

    return serializer


def guarded_methods(service: Any, servicer: Any) -> dict[str, grpc.RpcMethodHandler]:
    """``servicer``'s methods of ``service`` (a protobuf ServiceDescriptor) by full path, each
    unary one wrapped by ``guarded``."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        implementation = getattr(servicer, method.name)
        path = f"/{service.full_name}/{method.name}"
        kwargs: dict[str, Any] = {
            "request_deserializer": request_class.FromString,
            "response_serializer": _serializer(response_class),
        }
        if method.client_streaming:
            continue  # none in TF Serving's or the health API
        if method.server_streaming:  # health Watch: no error mapping needed
            handlers[path] = grpc.unary_stream_rpc_method_handler(implementation, **kwargs)
        else:
            handlers[path] = grpc.unary_unary_rpc_method_handler(
                guarded(path, implementation), **kwargs
            )
    return handlers


def _register(server: grpc.aio.Server, methods: dict[str, grpc.RpcMethodHandler]) -> None:
    """grpc.aio: each service's methods as registered methods (matched by the C core)."""
    services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for path, handler in methods.items():
        service, name = path[1:].rsplit("/", 1)
        services.setdefault(service, {})[name] = handler
    for service, handlers in services.items():
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)


class PredictionService(protos.prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, dataplane: DataPlane, tensor_content_answers: bool = False) -> None:
        self.dataplane = dataplane
        self.tensor_content_answers = tensor_content_answers

    async def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC names
        ref = _routed(convert.model_ref(request.model_spec))
        result = await self.dataplane.predict(
            ref,
            convert.predict_decoder(request),
            # A slice, as tensor_proto.proto_shape reads dims: list() of upb's repeated container
            # ends on its __getitem__'s IndexError (it has no __iter__).
            request.output_filter[:] if request.output_filter else (),
            _deadline(context),
            _CALL.get()[0],
        )
        return convert.predict_answer(result, result.signature.outputs, self.tensor_content_answers)

    async def Classify(self, request: Any, context: Any) -> Any:  # noqa: N802
        result = await self.dataplane.classify(
            _routed(convert.model_ref(request.model_spec)),
            lambda: convert.examples(request.input),
            _deadline(context),
            request_id=_CALL.get()[0],
        )
        return convert.classification_response(result)

    async def Regress(self, request: Any, context: Any) -> Any:  # noqa: N802
        result = await self.dataplane.regress(
            _routed(convert.model_ref(request.model_spec)),
            lambda: convert.examples(request.input),
            _deadline(context),
            request_id=_CALL.get()[0],
        )
        return convert.regression_response(result)

    async def MultiInference(self, request: Any, context: Any) -> Any:  # noqa: N802
        tasks = [(_routed(convert.model_ref(t.model_spec)), t.method_name) for t in request.tasks]
        results = await self.dataplane.multi_inference(
            tasks, lambda: convert.examples(request.input), _deadline(context), _CALL.get()[0]
        )
        response = protos.inference_pb2.MultiInferenceResponse()
        for result in results:
            entry = response.results.add()
            convert.fill_model_spec(entry.model_spec, result.spec)
            if isinstance(result, ClassifyResult):
                entry.classification_result.CopyFrom(convert.classification_result(result))
            else:
                entry.regression_result.CopyFrom(convert.regression_result(result))
        return response

    async def GetModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        if "signature_def" not in request.metadata_field:
            raise invalid_argument("Metadata field signature_def is not specified")
        ref = convert.model_ref(request.model_spec)
        return convert.metadata_response(self.dataplane.get_model_metadata(ref))


class ModelService(protos.model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, dataplane: DataPlane, reloader: ConfigReloader | None) -> None:
        self.dataplane = dataplane
        self.reloader = reloader

    async def GetModelStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
        ref = convert.model_ref(request.model_spec)
        return convert.status_response(self.dataplane.get_model_status(ref))

    async def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:  # noqa: N802
        if self.reloader is None:
            raise ServingError(Code.UNIMPLEMENTED, "this gateway has no control plane")
        await self.reloader.reload_config(request.config)
        response = protos.model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response


def _deadline(context: Any) -> float | None:
    remaining = context.time_remaining()
    return remaining if remaining is not None and remaining < 1e9 else None


PROFILER_SERVICE = "tensorflow.ProfilerService"
PROFILER_UNAVAILABLE = (
    "tfsgate serves no TensorFlow profiler: this server runs no TensorFlow ops, the models run in "
    "Triton's TensorFlow runner processes. Profile a model with Triton's trace API "
    "(tritonserver --trace-config) or by running its SavedModel under tf.profiler "
    "(docs/compatibility.md)."
)


async def _profiler_unimplemented(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise ServingError(Code.UNIMPLEMENTED, PROFILER_UNAVAILABLE)  # mapped by guarded()


def profiler_methods() -> dict[str, grpc.RpcMethodHandler]:
    """TF Serving registers tensorflow.ProfilerService (--enable_profiler, on by default); here
    each of its methods answers UNIMPLEMENTED with the reason instead of gRPC's bare "Method not
    found"."""
    return {
        f"/{PROFILER_SERVICE}/{name}": grpc.unary_unary_rpc_method_handler(
            guarded(f"/{PROFILER_SERVICE}/{name}", _profiler_unimplemented)
        )
        for name in ("Profile", "Terminate", "Monitor")
    }


@dataclass(frozen=True)
class GrpcOptions:
    """How the gRPC door listens, from TF Serving's flags (built by the composition root)."""

    credentials: grpc.ServerCredentials | None = None  # --ssl_config_file / ALTS; None: plain
    channel_args: tuple[tuple[str, int | str], ...] = ()  # --grpc_channel_arguments
    max_concurrent_rpcs: int | None = None  # --grpc_max_threads
    tf_health_names: bool = False  # --enable_grpc_healthcheck_service
    profiler: bool = True  # --enable_profiler
    reuse_port: bool = False  # one of several gateway processes on this port (--gateway_workers)


# TF Serving's SetMaxMessageSize(INT_MAX) and one listener per port.
_DEFAULT_ARGS: dict[str, int | str] = {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.so_reuseport": 0,
}
# The channel arguments the door's own HTTP/2 server honours; any other (keepalive, connection
# age, ...) is grpc.aio's to apply, so the door runs on grpc.aio then, as it does with TLS.
_OWN_SERVER_ARGS = frozenset((*_DEFAULT_ARGS, "grpc.so_reuseaddr"))


class GrpcServer:
    """TF Serving's gRPC services on the door's own HTTP/2 server (``grpc_h2``), or on grpc.aio's
    when TLS or a channel argument only grpc's core knows is asked for."""

    def __init__(
        self,
        dataplane: DataPlane,
        settings: GrpcSettings,
        reloader: ConfigReloader | None = None,
        options: GrpcOptions | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or GrpcOptions()
        args = {**_DEFAULT_ARGS, **dict(self.options.channel_args)}  # the flag's values win
        if self.options.reuse_port:
            args["grpc.so_reuseport"] = 1
        self._health = health.aio.HealthServicer()
        methods = {
            **guarded_methods(
                protos.prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"],
                PredictionService(dataplane, settings.enable_serialization_as_tensor_content),
            ),
            **guarded_methods(
                protos.model_service_pb2.DESCRIPTOR.services_by_name["ModelService"],
                ModelService(dataplane, reloader),
            ),
            **guarded_methods(health_pb2.DESCRIPTOR.services_by_name["Health"], self._health),
            **(profiler_methods() if self.options.profiler else {}),
        }
        self._own: Http2GrpcServer | None = None
        self._aio: grpc.aio.Server | None = None
        if self.options.credentials is None and set(args) <= _OWN_SERVER_ARGS:
            self._own = Http2GrpcServer(
                methods,
                max_receive=_limit(args["grpc.max_receive_message_length"]),
                max_send=_limit(args["grpc.max_send_message_length"]),
                max_concurrent_rpcs=self.options.max_concurrent_rpcs,
            )
        else:
            self._aio = grpc.aio.server(
                options=list(args.items()),
                maximum_concurrent_rpcs=self.options.max_concurrent_rpcs,
            )
            _register(self._aio, methods)
        self._reuse_port = bool(int(args["grpc.so_reuseport"]))

    async def start(self, serving: bool = True) -> None:
        s = self.settings  # port 0: only the Unix socket (TF Serving requires one of the two)
        if self._own is not None:
            if s.port:
                await self._own.listen_tcp(s.host, s.port, self._reuse_port)
            if s.grpc_socket_path:
                await self._own.listen_unix(s.grpc_socket_path)
        else:
            assert self._aio is not None
            addresses = [f"{s.host}:{s.port}"] if s.port else []
            if s.grpc_socket_path:
                addresses.append(f"unix:{s.grpc_socket_path}")
            for address in addresses:
                if self.options.credentials is None:
                    self._aio.add_insecure_port(address)
                else:
                    self._aio.add_secure_port(address, self.options.credentials)
            await self._aio.start()
        await self.set_serving(serving)

    async def set_serving(self, serving: bool) -> None:
        """grpc.health.v1: SERVING, or NOT_SERVING while a gateway cannot answer (no routing
        table yet, no Triton instance ready)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        names = ["", "tensorflow.serving.PredictionService"]
        if self.options.tf_health_names:  # the names TF Serving's health service reports
            names += ["ModelService", "PredictionService"]
        for name in names:
            await self._health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        await self._health.enter_graceful_shutdown()
        if self._own is not None:
            await self._own.stop(grace)
        if self._aio is not None:
            await self._aio.stop(grace)


def _limit(value: int | str) -> int:
    """grpc's message-size arguments: -1 is no limit."""
    number = int(value)
    return MAX_MESSAGE_BYTES if number < 0 else number
