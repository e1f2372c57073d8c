"""TF Serving's REST API (``/v1/models/...``) over the data plane.

Paths are parsed with TF Serving's own patterns; everything else is a 400 "Malformed request".
Each request makes one data-plane call; ``ServingError`` becomes ``{"error": ...}`` with TF's
status-to-HTTP table in one exception handler. ``RestApp`` is the handler of the door's HTTP
server (``gateway/http_server.py``): a whole request in, a whole answer out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

import numpy as np
import orjson

from gateway import large_bodies, metrics
from gateway.codecs import json_model_info, json_requests, tf_example
from gateway.dataplane import DataPlane
from gateway.deadlines import Deadlines
from gateway.http_server import Answer as HttpAnswer
from gateway.http_server import Headers, HttpServer
from gateway.inflate import GZIP, inflate
from gateway.memo import remember
from gateway.request_ids import accept_request_id
from gateway.types import ModelRef
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
# http_server.cc: the REST dispatcher's paths (kHTTPRestApiHandlerPathRegex), and the Origin a CORS
# preflight must carry.
_REST_API = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_ORIGIN = re.compile(r"https?://")


class RestSettings(Protocol):
    host: str
    rest_api_port: int
    rest_api_timeout_in_ms: int
    rest_api_enable_cors_support: bool


@dataclass(frozen=True)
class ParsedPath:
    ref: ModelRef
    verb: str  # predict, classify, regress, status, metadata


# Parsed paths by (method, path): clients call a few paths again and again, and a ParsedPath is
# immutable (gateway/memo.py).
_PARSED: dict[tuple[str, str], ParsedPath] = {}
_PARSED_ENTRIES = 256


def parse_path(method: str, path: str) -> ParsedPath:
    key = (method, path)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = remember(_PARSED, key, _parse_path(method, path), _PARSED_ENTRIES)
    return parsed


def _parse_path(method: str, path: str) -> ParsedPath:
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


def error_reply(exc: ServingError) -> Reply:
    return exc.http_status, orjson.dumps({"error": exc.message})


# TF Serving inflates a gzip body to at most ZLib::kMaxUncompressedBytes, 10 MiB (net_http
# compression/gzip_zlib.h; the model server sets no other auto_uncompress_max_size): the bound
# is held while inflating (gateway/inflate.py).
MAX_INFLATED = 10 << 20


def decompress(body: bytes, encoding: str) -> bytes:
    """The request body, gunzipped when ``Content-Encoding: gzip`` (TF Serving accepts it)."""
    if encoding.lower() != "gzip":
        return body
    try:
        inflated = inflate(body, GZIP, MAX_INFLATED)
    except zlib.error as exc:
        raise invalid_argument(f"Failed to decompress gzip request body: {exc}") from exc
    if len(inflated) > MAX_INFLATED:
        raise invalid_argument(
            f"Failed to decompress gzip request body: more than {MAX_INFLATED} bytes inflated"
        )
    return inflated


class RestHandlers:
    """One method per verb; each decodes, makes one data-plane call, encodes.

    Answers are (HTTP status, body, served version or None); the version becomes the
    ``X-Model-Version`` header so a caller of a traffic split sees which version answered.
    """

    def __init__(
        self, dataplane: DataPlane, timeout: float | None, feedback: FeedbackHandler | None = None
    ) -> None:
        self.dataplane = dataplane
        self.deadlines = Deadlines(timeout) if timeout else None
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
        answering = getattr(self, f"_{parsed.verb}")(parsed.ref, body, request_id)
        del body  # the verb alone holds it (see http_server's _answer)
        if self.deadlines is None:
            return await answering  # type: ignore[no-any-return]
        # The request's one deadline (--rest_api_timeout_in_ms), enforced here and only here:
        # the layers below are cancelled with it, so they get no timeout of their own.
        return await self.deadlines.within(answering)  # type: ignore[no-any-return]

    async def _predict(self, ref: ModelRef, body: bytes, request_id: str) -> Answer:
        request = json_requests.PredictBody(body)
        del body  # PredictBody lets it go once decoded
        ref = ref.with_signature(request.signature_name)
        result = await self.dataplane.predict(ref, request.tensors, request_id=request_id)
        return (
            200,
            json_requests.encode_predict_response(result.outputs, request.row_format),
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
# http_rest_api_util.cc AddCORSHeaders, on every answer of the REST dispatcher when
# --rest_api_enable_cors_support.
_CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, GET"),
    (b"access-control-allow-headers", b"Content-Type"),
]


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
    large_bodies: int = large_bodies.LIMIT  # --rest_large_bodies


class RestApp:
    """The door's request handler: TF Serving's REST API has one route table of its own, so a
    framework's router and middleware stack would only add per-request cost (measured ~10% of
    the gateway's CPU under load with FastAPI). ``ServingError`` is mapped here, once."""

    def __init__(
        self, handlers: RestHandlers, options: RestOptions | None = None, cors: bool = False
    ) -> None:
        self.handlers = handlers
        options = options or RestOptions()
        self.metrics_path = options.metrics_path
        self.cors = cors
        # --rest_api_num_threads: TF Serving handles that many requests at once, others queue.
        self._slots = asyncio.Semaphore(options.max_concurrent) if options.max_concurrent else None

    async def __call__(
        self, method: str, raw_path: bytes, headers: Headers, body: bytes
    ) -> HttpAnswer:
        # The raw path: model names and labels are URL-decoded after matching, as TF Serving does.
        path = raw_path.decode("latin-1")
        if method == "GET" and path == self.metrics_path:
            page, content_type = metrics.exposition()
            return 200, [(b"content-type", content_type.encode())], page
        if method == "OPTIONS" and _REST_API.fullmatch(path):
            return self._preflight(headers)
        started = time.perf_counter()
        verb, model, code = "malformed", "", Code.OK
        encoding, given_id, route_key = _scan_headers(headers)
        request_id = accept_request_id(given_id)
        version: int | None = None
        try:
            parsed = parse_path(method, path)
            if route_key:
                parsed = ParsedPath(replace(parsed.ref, route_key=route_key), parsed.verb)
            verb, model = parsed.verb, parsed.ref.name
            # The handler alone holds the body from here (see http_server's _answer).
            if self._slots is None:
                answering = self.handlers.handle(parsed, decompress(body, encoding), request_id)
                del body
                status, reply, version = await answering
            else:
                async with self._slots:
                    answering = self.handlers.handle(parsed, decompress(body, encoding), request_id)
                    del body
                    status, reply, version = await answering
        except ServingError as exc:
            code = exc.code
            status, reply = error_reply(exc)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 in TF's shape, never a hang
            log.exception("REST %s %s failed", method, path)
            code = Code.INTERNAL
            status, reply = 500, orjson.dumps({"error": str(exc)})
        metrics.observe("rest", verb, model, code, time.perf_counter() - started)
        answer_headers = [*_JSON_HEADERS, (b"x-request-id", request_id.encode("latin-1"))]
        if version is not None:
            answer_headers.append((b"x-model-version", str(version).encode()))
        if self.cors and _REST_API.fullmatch(path):
            answer_headers += _CORS_HEADERS
        return status, answer_headers, reply

    def _preflight(self, headers: Headers) -> HttpAnswer:
        """http_server.cc answers OPTIONS itself, with or without CORS support: 200 when the
        Origin names an http(s) origin, else 400 (FAILED_PRECONDITION, "Origin header is missing
        in CORS preflight", not written: the body is empty)."""
        origin = next((value for name, value in headers if name == b"origin"), b"")
        status = 200 if _ORIGIN.search(origin.decode("latin-1")) else 400
        return status, list(_CORS_HEADERS) if self.cors else [], b""


def _scan_headers(headers: Headers) -> tuple[str, str, str]:
    """Content-Encoding, X-Request-Id and X-Route-Key in one pass over the headers."""
    encoding = request_id = route_key = ""
    for key, value in headers:
        if key == b"x-request-id":
            request_id = value.decode("latin-1")
        elif key == b"x-route-key":
            route_key = value.decode("latin-1")
        elif key == b"content-encoding":
            encoding = value.decode("latin-1")
    return encoding, request_id, route_key


def create_rest_app(
    dataplane: DataPlane,
    settings: RestSettings,
    options: RestOptions | None = None,
    feedback: FeedbackHandler | None = None,
) -> RestApp:
    timeout = (
        settings.rest_api_timeout_in_ms / 1000 if settings.rest_api_timeout_in_ms > 0 else None
    )
    return RestApp(
        RestHandlers(dataplane, timeout, feedback), options, settings.rest_api_enable_cors_support
    )


def ssl_context(tls: RestTls) -> ssl.SSLContext:
    """The REST port's TLS, from the same files uvicorn was given: the server's certificate and
    key, the CA client certificates are checked against, and client certificates required when
    SSLConfig.client_verify. Python's default ciphers (uvicorn narrowed them to "TLSv1")."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.certfile, tls.keyfile)
    if tls.ca_certs is not None:
        context.load_verify_locations(tls.ca_certs)
    context.verify_mode = ssl.CERT_REQUIRED if tls.client_verify else ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class RestServer:
    """The REST door: ``RestApp`` behind the HTTP server, on --rest_api_port."""

    def __init__(
        self,
        dataplane: DataPlane,
        settings: RestSettings,
        options: RestOptions | None = None,
        feedback: FeedbackHandler | None = None,
    ) -> None:
        options = options or RestOptions()
        self._server = HttpServer(
            create_rest_app(dataplane, settings, options, feedback),
            settings.host,
            settings.rest_api_port,
            ssl_context=ssl_context(options.tls) if options.tls is not None else None,
            reuse_port=options.reuse_port,
            large_bodies=large_bodies.LargeBodies(options.large_bodies),
        )

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float = 5.0) -> None:
        await self._server.stop(grace)
