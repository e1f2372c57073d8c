"""What ``tensorflow_model_server`` checks before it serves, with its texts and exit status.

``Server::BuildAndStart`` (``model_servers/server.cc``) refuses some flag combinations with
INVALID_ARGUMENT; ``main`` prints any start-up failure as "Failed to start server. Error: <status>"
on standard output and returns -1 (exit status 255). A config file that does not parse is also
preceded, on standard error, by protobuf's "Error parsing text-format <type>: ..." line.
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

import grpc

from gateway import metrics as gateway_metrics
from gateway.grpc_service import GrpcOptions
from gateway.metrics import METRICS_PATH
from gateway.rest import RestOptions, RestTls
from tfsgate.core import config_protos, protos
from tfsgate.core.defaults import FAILED_START_EXIT
from tfsgate.core.status import Code
from tfsgate.flags import without_effect
from tfsgate.settings import ServeSettings

log = logging.getLogger("tfsgate")


class StartupError(RuntimeError):
    """A reason ``serve`` cannot start: TF's status and, for a parse failure, protobuf's line."""

    def __init__(
        self, message: str, code: Code = Code.INVALID_ARGUMENT, parse_error: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.parse_error = parse_error


def report_failure(exc: StartupError) -> int:
    """Print the failure as TF Serving does; the exit status to return."""
    if exc.parse_error:
        log.error("%s", exc.parse_error)
    sys.stdout.write(f"Failed to start server. Error: {exc.code.name}: {exc.message}\n")
    sys.stdout.flush()
    return FAILED_START_EXIT


def check_flags(s: ServeSettings) -> None:
    """``BuildAndStart``'s checks of the flags alone, in its order."""
    if s.port == 0 and not s.grpc_socket_path:
        raise StartupError(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must "
            "be set."
        )
    if s.use_alts_credentials and s.ssl_config_file:
        raise StartupError(
            "Either use_alts_credentials must be false or ssl_config_file must be empty."
        )
    if not s.model_base_path and not s.model_config_file:
        raise StartupError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if s.batching_parameters_file and not s.enable_batching:
        raise StartupError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if (
        s.tensorflow_intra_op_parallelism > 0
        and s.tensorflow_inter_op_parallelism > 0
        and s.tensorflow_session_parallelism > 0
    ):
        raise StartupError(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
        )


def report_no_effect(s: ServeSettings) -> None:
    """One line at start-up naming the given flags that change nothing here."""
    names = without_effect(ServeSettings.model_fields, s.model_fields_set)
    if names:
        log.warning(
            "flags with no effect in tfsgate (accepted for compatibility, see docs/flags.md): %s",
            ", ".join(f"--{name}" for name in names),
        )


def read_config_files(s: ServeSettings) -> None:
    """The files ``BuildAndStart`` reads before it serves, in its order, failing as it fails: a
    missing file is NOT_FOUND, one that does not parse "Invalid protobuf file" after protobuf's
    line. Their contents are used where tfsgate honours them (see docs/flags.md)."""
    if s.platform_config_file:  # a PlatformConfigMap holds Any messages tfsgate has no types for
        _readable(s.platform_config_file)
    else:
        if s.enable_batching and s.batching_parameters_file:
            _config_file(s.batching_parameters_file, config_protos.BatchingParameters)
        if s.tensorflow_session_config_file:
            _config_file(s.tensorflow_session_config_file, protos.config_pb2.ConfigProto)
    if s.thread_pool_factory_config_file:
        _readable(s.thread_pool_factory_config_file)


def _readable(path: str) -> None:
    try:
        config_protos.read_file(path)
    except config_protos.ConfigFileError as exc:
        raise StartupError(exc.message, exc.code) from None


def tf_session_config(s: ServeSettings) -> str:
    """The TensorFlow runner's session ConfigProto as ``Server::BuildAndStart`` builds it, base64 of
    its bytes ("" when no flag asks for more than the thread pools, which the worker sizes itself):
    --tensorflow_session_config_file, then --per_process_gpu_memory_fraction, then the thread
    flags over the file's (session_parallelism when the two are 0), and --mixed_precision=bfloat16
    as the oneDNN bfloat16 rewrite (``saved_model_bundle_factory.cc``)."""
    if not (
        s.tensorflow_session_config_file or s.per_process_gpu_memory_fraction or s.mixed_precision
    ):
        return ""
    config = protos.config_pb2.ConfigProto()
    if s.tensorflow_session_config_file:
        config = _config_file(s.tensorflow_session_config_file, protos.config_pb2.ConfigProto)
    config.gpu_options.per_process_gpu_memory_fraction = s.per_process_gpu_memory_fraction
    if s.tensorflow_intra_op_parallelism > 0 or s.tensorflow_inter_op_parallelism > 0:
        config.intra_op_parallelism_threads = s.tensorflow_intra_op_parallelism
        config.inter_op_parallelism_threads = s.tensorflow_inter_op_parallelism
    else:
        config.intra_op_parallelism_threads = s.tensorflow_session_parallelism
        config.inter_op_parallelism_threads = s.tensorflow_session_parallelism
    if s.mixed_precision == "bfloat16":
        rewrite = config.graph_options.rewrite_options
        rewrite.auto_mixed_precision_onednn_bfloat16 = rewrite.ON
    elif s.mixed_precision:
        log.warning(
            "%s auto mixed precision is not supported. Valid option: bfloat16", s.mixed_precision
        )
    return base64.b64encode(config.SerializeToString()).decode()


def custom_op_libraries(text: str) -> tuple[str, ...]:
    """``--custom_op_libraries``: each a .so path that exists or an importable package name (the
    TensorFlow runner loads them; a wrong one is refused here rather than at every load)."""
    found = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        if entry.endswith(".so") or os.sep in entry:
            path = Path(entry).resolve()
            if not path.is_file():
                raise StartupError(f"--custom_op_libraries: no such file {entry}", Code.NOT_FOUND)
            found.append(str(path))
        elif importlib.util.find_spec(entry.split(".")[0]) is None:
            raise StartupError(f"--custom_op_libraries: no package named {entry}", Code.NOT_FOUND)
        else:
            found.append(entry)
    return tuple(found)


# -- the front doors' options --------------------------------------------------------------------


def channel_args(text: str) -> tuple[tuple[str, int | str], ...]:
    """``parseGrpcChannelArgs``: comma-separated key=value; a value that is an int32 is passed as
    an int, anything else as a string."""
    args: list[tuple[str, int | str]] = []
    for item in text.split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StartupError(f"--grpc_channel_arguments: expected key=value, got '{item}'")
        value = value.split("=", 1)[0]  # TF keeps the part before a second '='
        try:
            number = int(value)
        except ValueError:
            args.append((key, value))
            continue
        args.append((key, number) if -(2**31) <= number < 2**31 else (key, value))
    return tuple(args)


def _config_file(path: str, message_class: Any) -> Any:
    try:
        return config_protos.parse_text_file(path, message_class)
    except config_protos.ConfigFileError as exc:
        raise StartupError(exc.message, exc.code, exc.parse_error) from None


def ssl_config(path: str) -> Any:
    """--ssl_config_file's SSLConfig, with what gRPC needs of it checked up front."""
    config = _config_file(path, config_protos.SSLConfig)
    if not config.server_key or not config.server_cert:
        raise StartupError(f"{path}: an SSLConfig needs server_key and server_cert")
    if config.client_verify and not config.custom_ca:
        raise StartupError(
            f"{path}: client_verify needs custom_ca, the CA that signs client certificates"
        )
    return config


def grpc_credentials(s: ServeSettings) -> grpc.ServerCredentials | None:
    """``BuildServerCredentials``: ALTS, SSL from the SSLConfig, or none."""
    if s.use_alts_credentials:
        log.info("Using ALTS credentials")
        return grpc.alts_server_credentials()
    if not s.ssl_config_file:
        return None
    config = ssl_config(s.ssl_config_file)
    log.info("Using SSL credentials")
    return grpc.ssl_server_credentials(
        [(config.server_key.encode(), config.server_cert.encode())],
        root_certificates=config.custom_ca.encode() or None,
        require_client_auth=config.client_verify,
    )


def rest_tls(s: ServeSettings) -> RestTls | None:
    """The same SSLConfig on the REST port (tfsgate's addition: TF Serving's REST is plain).
    ssl.SSLContext.load_cert_chain reads PEM files, so they are written under the home directory,
    readable by us only."""
    if not s.ssl_config_file:
        return None
    config = ssl_config(s.ssl_config_file)
    directory = s.home_path / "tls"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def write(name: str, text: str) -> Path:
        path = directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return path

    return RestTls(
        certfile=write("server_cert.pem", config.server_cert),
        keyfile=write("server_key.pem", config.server_key),
        ca_certs=write("custom_ca.pem", config.custom_ca) if config.custom_ca else None,
        client_verify=config.client_verify,
    )


def metrics_path(s: ServeSettings) -> str | None:
    """--monitoring_config_file: where Prometheus metrics are served, None when disabled.
    Without the file tfsgate serves them at TF Serving's default path."""
    if not s.monitoring_config_file:
        return METRICS_PATH
    prometheus = _config_file(s.monitoring_config_file, config_protos.MonitoringConfig)
    prometheus = prometheus.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or METRICS_PATH


def tf_serving_metrics(s: ServeSettings) -> bool:
    """TF Serving records and serves its ``:tensorflow:*`` series only when
    --monitoring_config_file enables Prometheus; tfsgate's own series need no file."""
    if not s.monitoring_config_file:
        return False
    config = _config_file(s.monitoring_config_file, config_protos.MonitoringConfig)
    return bool(config.prometheus_config.enable)


def front_door_options(s: ServeSettings) -> tuple[GrpcOptions, RestOptions]:
    """The front doors' options; also turns TF Serving's series on or off, process-wide (both
    front doors record them, as TF Serving's are process-wide)."""
    gateway_metrics.record_tf_serving(tf_serving_metrics(s))
    grpc_options = GrpcOptions(
        credentials=grpc_credentials(s),
        channel_args=channel_args(s.grpc_channel_arguments),
        max_concurrent_rpcs=s.grpc_max_threads if s.grpc_max_threads > 0 else None,
        tf_health_names=s.enable_grpc_healthcheck_service,
        profiler=s.enable_profiler,
        reuse_port=s.reuse_port,
    )
    rest_options = RestOptions(
        tls=rest_tls(s),
        max_concurrent=s.rest_api_num_threads if s.rest_api_num_threads > 0 else None,
        metrics_path=metrics_path(s),
        reuse_port=s.reuse_port,
        large_bodies=s.rest_large_bodies,
    )
    return grpc_options, rest_options


# -- what the engine needs of the flags ----------------------------------------------------------


def session_threads(s: ServeSettings) -> tuple[int, int]:
    """(intra-op, inter-op) threads for the TensorFlow runner, as ``BuildAndStart`` fills the
    session ConfigProto: the separate flags when either is set, else the session parallelism for
    both; 0 lets TensorFlow choose. --tensorflow_session_config_file's values come first, the
    flags override them."""
    intra = inter = 0
    if s.tensorflow_session_config_file:
        config = _config_file(s.tensorflow_session_config_file, protos.config_pb2.ConfigProto)
        intra, inter = config.intra_op_parallelism_threads, config.inter_op_parallelism_threads
    if s.tensorflow_intra_op_parallelism > 0 or s.tensorflow_inter_op_parallelism > 0:
        return s.tensorflow_intra_op_parallelism, s.tensorflow_inter_op_parallelism
    if s.tensorflow_session_parallelism > 0:
        return s.tensorflow_session_parallelism, s.tensorflow_session_parallelism
    return intra, inter


def saved_model_tags(s: ServeSettings) -> tuple[str, ...]:
    """``--saved_model_tags``, split on commas as TF Serving splits it."""
    return tuple(tag for tag in s.saved_model_tags.split(",") if tag)
