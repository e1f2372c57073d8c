"""TF Serving's REST API (``/v1/models/...``) over the data plane.

Paths are parsed with TF Serving's own patterns; everything else is a 400 "Malformed request".
Each request makes one data-plane call; ``ServingError`` becomes ``{"error": ...}`` with TF's
status-to-HTTP table in one exception handler.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

import numpy as np
import orjson
import uvicorn
from starlette.middleware.cors import CORSMiddleware

from gateway import metrics
from gateway.codecs import json_model_info, json_requests, tf_example
from gateway.dataplane import DataPlane
from gateway.request_ids import accept_request_id
from gateway.types import ModelRef, Tensors
from tfsgate.core.signatures import SignatureSpec
from tfsgate.core.status import Code, ServingError, invalid_argument

JSON = "application/json"
log = logging.getLogger(__name__)

# TF Serving's http_rest_api_handler patterns (case-insensitive, whole path).
_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict|feedback)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)


class RestSettings(Protocol):
    host: str
    rest_api_port: int
    rest_api_timeout_in_ms: int
    rest_api_enable_cors_support: bool


@dataclass(frozen=True)
class ParsedPath:
    ref: ModelRef
    verb: str  # predict, classify, regress, status, metadata


def parse_path(method: str, path: str) -> ParsedPath:
    if method == "POST":
        match = _PREDICT.fullmatch(path)
        if match:
            name, version, label, verb = match.groups()
            return ParsedPath(_ref(name, version, label), verb.lower())
    elif method == "GET":
        match = _STATUS.fullmatch(path)
        if match and match.group(1):
            name, version, label, metadata = match.groups()
            return ParsedPath(_ref(name, version, label), "metadata" if metadata else "status")
    raise invalid_argument(f"Malformed request: {method} {path}")


def _ref(name: str, version: str | None, label: str | None) -> ModelRef:
    return ModelRef(
        name=unquote(name),
        version=int(version) if version is not None else None,
        label=unquote(label) if label is not None else None,
    )


Reply = tuple[int, bytes]
Answer = tuple[int, bytes, int | None]


class FeedbackHandler(Protocol):
    """``POST /v1/models/{m}:feedback``: ground truth by request id; answers the JSON reply."""

    async def feedback(self, model: str, body: bytes) -> bytes: ...


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def error_reply(exc: ServingError) -> Reply:
    return exc.http_status, orjson.dumps({"error": exc.message})


def decompress(body: bytes, encoding: str) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip`` (TF Serving accepts it)."""
    if encoding.lower() != "gzip":
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise invalid_argument(f"Failed to decompress gzip request body: {exc}") from exc


class RestHandlers:
    """One method per verb; each decodes, makes one data-plane call, encodes.

    Answers are (HTTP status, body, served version or None); the version becomes the
    ``X-Model-Version`` header so a caller of a traffic split sees which version answered.
    """

    def __init__(
        self, dataplane: DataPlane, timeout: float | None, feedback: FeedbackHandler | None = None
    ) -> None:
        self.dataplane = dataplane
        self.timeout = timeout
        self.feedback = feedback

    async def handle(self, parsed: ParsedPath, body: bytes, request_id: str = "") -> Answer:
        if parsed.verb == "status":
            statuses = self.dataplane.get_model_status(parsed.ref)
            return 200, json_model_info.encode_model_status(statuses), None
        if parsed.verb == "metadata":
            metadata = self.dataplane.get_model_metadata(parsed.ref)
            spec = metadata.spec
            return (
                200,
                json_model_info.encode_model_metadata(spec.name, spec.version, metadata.signatures),
                None,
            )
        if parsed.verb == "feedback":
            if self.feedback is None:
                raise ServingError(Code.UNIMPLEMENTED, "feedback is not enabled on this gateway")
            return 200, await self.feedback.feedback(parsed.ref.name, body), None
        call = getattr(self, f"_{parsed.verb}")
        try:
            # The request's one deadline (--rest_api_timeout_in_ms), enforced here and only here:
            # the layers below are cancelled with it, so they get no timeout of their own (each
            # asyncio.timeout is a timer handle on the loop's heap: measured ~10% of the REST
            # path's CPU with three per request). asyncio.timeout, not wait_for: no extra task.
            async with asyncio.timeout(self.timeout):
                return await call(parsed.ref, body, request_id)  # type: ignore[no-any-return]
        except TimeoutError:
            raise ServingError(Code.DEADLINE_EXCEEDED, "Request timed out") from None

    async def _predict(self, ref: ModelRef, body: bytes, request_id: str) -> Answer:
        document = json_requests.parse_request_object(body)
        ref = ref.with_signature(json_requests.request_signature_name(document))

        def decode(signature: SignatureSpec) -> Tensors:
            return json_requests.decode_predict_request(document, signature).tensors

        result = await self.dataplane.predict(ref, decode, request_id=request_id)
        row_format = "instances" in document
        return (
            200,
            json_requests.encode_predict_response(result.outputs, row_format),
            result.spec.version,
        )

    def _examples(self, ref: ModelRef, body: bytes) -> tuple[ModelRef, np.ndarray]:
        request = json_requests.decode_examples(body)
        serialized = tf_example.examples_from_json(request.examples, request.context)
        return ref.with_signature(request.signature_name), serialized

    async def _classify(self, ref: ModelRef, body: bytes, request_id: str) -> Answer:
        ref, serialized = self._examples(ref, body)
        result = await self.dataplane.classify(ref, serialized, request_id=request_id)
        return 200, json_requests.encode_classify_response(result.classes), result.spec.version

    async def _regress(self, ref: ModelRef, body: bytes, request_id: str) -> Answer:
        ref, serialized = self._examples(ref, body)
        result = await self.dataplane.regress(ref, serialized, request_id=request_id)
        return 200, json_requests.encode_regress_response(result.values), result.spec.version


_JSON_HEADERS = [(b"content-type", JSON.encode())]


@dataclass(frozen=True)
class RestTls:
    """PEM files (written by the composition root from --ssl_config_file's SSLConfig)."""

    certfile: Path
    keyfile: Path
    ca_certs: Path | None = None
    client_verify: bool = False


@dataclass(frozen=True)
class RestOptions:
    tls: RestTls | None = None
    max_concurrent: int | None = None  # --rest_api_num_threads
    metrics_path: str | None = metrics.METRICS_PATH  # --monitoring_config_file; None: off
    reuse_port: bool = False  # one of several gateway processes on this port (--gateway_workers)


class RestApp:
    """A bare ASGI app: TF Serving's REST API has one route table of its own, so a framework's
    router and middleware stack would only add per-request cost (measured ~10% of the gateway's
    CPU under load with FastAPI). ``ServingError`` is mapped here, once."""

    def __init__(self, handlers: RestHandlers, options: RestOptions | None = None) -> None:
        self.handlers = handlers
        options = options or RestOptions()
        self.metrics_path = options.metrics_path
        # --rest_api_num_threads: TF Serving handles that many requests at once, others queue.
        self._slots = asyncio.Semaphore(options.max_concurrent) if options.max_concurrent else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websockets
        method = scope["method"]
        # raw_path: model names and labels are URL-decoded after matching, as TF Serving does.
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if method == "GET" and path == self.metrics_path:
            await _send(send, 200, *metrics.exposition())
            return
        started = time.perf_counter()
        verb, model, code = "malformed", "", Code.OK
        encoding, given_id, route_key = _request_headers(scope)
        request_id = accept_request_id(given_id)
        version: int | None = None
        try:
            parsed = parse_path(method, path)
            if route_key:
                parsed = ParsedPath(replace(parsed.ref, route_key=route_key), parsed.verb)
            verb, model = parsed.verb, parsed.ref.name
            body = await _read_body(receive)
            if self._slots is None:
                status, reply, version = await self.handlers.handle(
                    parsed, decompress(body, encoding), request_id
                )
            else:
                async with self._slots:
                    status, reply, version = await self.handlers.handle(
                        parsed, decompress(body, encoding), request_id
                    )
        except ServingError as exc:
            code = exc.code
            status, reply = error_reply(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 in TF's shape, never a hang
            log.exception("REST %s %s failed", method, path)
            code = Code.INTERNAL
            status, reply = 500, orjson.dumps({"error": str(exc)})
        metrics.observe("rest", verb, model, code, time.perf_counter() - started)
        headers = [*_JSON_HEADERS, (b"x-request-id", request_id.encode("latin-1"))]
        if version is not None:
            headers.append((b"x-model-version", str(version).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": reply})


def _request_headers(scope: Scope) -> tuple[str, str, str]:
    """Content-Encoding, X-Request-Id and X-Route-Key in one pass over the headers."""
    encoding = request_id = route_key = ""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            request_id = value.decode("latin-1")
        elif key == b"x-route-key":
            route_key = value.decode("latin-1")
        elif key == b"content-encoding":
            encoding = value.decode("latin-1")
    return encoding, request_id, route_key


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = _JSON_HEADERS if content_type == JSON else [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def create_rest_app(
    dataplane: DataPlane,
    settings: RestSettings,
    options: RestOptions | None = None,
    feedback: FeedbackHandler | None = None,
) -> Any:
    timeout = (
        settings.rest_api_timeout_in_ms / 1000 if settings.rest_api_timeout_in_ms > 0 else None
    )
    app: Any = RestApp(RestHandlers(dataplane, timeout, feedback), options)
    if settings.rest_api_enable_cors_support:
        app = CORSMiddleware(app, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    return app


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our event loop: signals belong to the composition root, not to uvicorn."""

    def capture_signals(self) -> Any:
        import contextlib

        return contextlib.nullcontext()


class RestServer:
    def __init__(
        self,
        dataplane: DataPlane,
        settings: RestSettings,
        options: RestOptions | None = None,
        feedback: FeedbackHandler | None = None,
    ) -> None:
        options = options or RestOptions()
        tls: dict[str, Any] = {}
        if options.tls is not None:
            tls = {
                "ssl_certfile": str(options.tls.certfile),
                "ssl_keyfile": str(options.tls.keyfile),
                "ssl_ca_certs": str(options.tls.ca_certs) if options.tls.ca_certs else None,
                "ssl_cert_reqs": ssl.CERT_REQUIRED if options.tls.client_verify else ssl.CERT_NONE,
            }
        config = uvicorn.Config(
            create_rest_app(dataplane, settings, options, feedback),
            host=settings.host,
            port=settings.rest_api_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="httptools",
            **tls,
        )
        self._server = _EmbeddedUvicorn(config)
        self._reuse_port = options.reuse_port
        self._address = (settings.host, settings.rest_api_port)

    def _reuse_port_socket(self) -> socket.socket:
        """The listening socket, bound with SO_REUSEPORT: the kernel spreads connections over
        every gateway process bound to the port."""
        family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
        # IPPROTO_TCP stated: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (with
        # proto 0, Nagle and delayed ACKs held every answer ~40 ms: bench, 2 workers, REST).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(self._address)
        return sock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sockets = [self._reuse_port_socket()] if self._reuse_port else None
        self._task = asyncio.ensure_future(self._server.serve(sockets=sockets))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it failed to bind
                raise RuntimeError("REST server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
