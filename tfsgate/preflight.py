"""Checks of a role's inputs before anything starts: ports, the model set, the engine's settings.

Each failure is a ``StartupError`` (TF Serving's one-line "Failed to start server" report).
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from control_plane.converter.batching import BatchingConfig, BatchingConfigError
from control_plane.converter.exporter import RUNNERS, ExportOptions
from control_plane.converter.triton_config import EngineOptions
from control_plane.sources.base_path import (
    discover_versions,
    missing_base_path_message,
    no_versions_message,
)
from control_plane.sources.model_config import (
    ModelConfigError,
    ModelSetConfig,
    load_model_config,
    single_model_config,
)
from tfsgate.core import ports
from tfsgate.core.status import Code
from tfsgate.settings import ServeSettings
from tfsgate.startup import StartupError, custom_op_libraries, tf_session_config

log = logging.getLogger("tfsgate")


def check_port_free(host: str, port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(
                f"port {port} ({flag}) is already in use: {exc.strerror}", Code.UNAVAILABLE
            ) from None
    ports.reserve(port)  # free now: never handed to the embedded Triton started before it binds


def check_front_door_ports(s: ServeSettings) -> None:
    check_port_free(s.host, s.port, "--port")
    if s.rest_api_port != s.port:
        check_port_free(s.host, s.rest_api_port, "--rest_api_port")


def initial_model_set(settings: ServeSettings) -> ModelSetConfig:
    """The models named by flags: ``--model_config_file`` or ``--model_name/--model_base_path``."""
    root = Path.cwd()
    try:
        if settings.model_config_file:
            config = load_model_config(settings.model_config_file, root_dir=root)
        else:
            name, base_path = settings.model_name, settings.model_base_path
            config = single_model_config(name, base_path, root_dir=root)
    except ModelConfigError as exc:
        raise StartupError(str(exc), exc.code, exc.parse_error) from None
    # TF Serving waits for versions to appear; tfsgate says at once why nothing would serve.
    for model in config.models:
        if not model.base_path.is_dir():
            message = missing_base_path_message(model.name, model.base_path)
            raise StartupError(message, Code.NOT_FOUND)
        if not discover_versions(model.base_path, tflite=settings.prefer_tflite_model):
            raise StartupError(no_versions_message(model.name, model.base_path), Code.NOT_FOUND)
    return config


def engine_options(s: ServeSettings) -> tuple[EngineOptions, ExportOptions]:
    """The engine's settings from TF Serving's flags and ours (issue 8)."""
    if s.runner and s.runner not in RUNNERS:
        raise StartupError(f"--runner must be one of {', '.join(RUNNERS)}, not {s.runner!r}")
    if s.triton_flavor not in ("cpu", "gpu"):
        raise StartupError(f"--triton_flavor must be cpu or gpu, not {s.triton_flavor!r}")
    http_urls = [u for u in s.triton_http_url.split(",") if u.strip()]
    if http_urls and len(http_urls) != len(s.triton_urls):
        raise StartupError(
            f"--triton_http_url names {len(http_urls)} Triton HTTP endpoints for"
            f" {len(s.triton_urls)} --triton_url: give one per instance, in the same order"
        )
    if any(not u.strip().startswith("http://") for u in http_urls):
        raise StartupError("--triton_http_url takes http://host:port URLs")
    if s.triton_flavor == "gpu" and not s.triton_url:
        raise StartupError(
            "--triton_flavor=gpu needs --triton_url: the embedded Triton is CPU-only"
        )
    if s.tensorrt_precision not in ("FP32", "FP16", "INT8"):
        raise StartupError(
            f"--tensorrt_precision must be FP32, FP16 or INT8, not {s.tensorrt_precision!r}"
        )
    try:
        batching = BatchingConfig.from_flags(s.enable_batching, s.batching_parameters_file)
    except BatchingConfigError as exc:
        raise StartupError(str(exc), Code.INVALID_ARGUMENT) from None
    for note in batching.notes:
        log.warning("--batching_parameters_file: %s", note)
    libraries = custom_op_libraries(s.custom_op_libraries)
    # TF Serving: session_parallelism sizes both pools unless they are given one by one.
    engine = EngineOptions(
        custom_op_libraries=libraries,
        tf_session_config=tf_session_config(s),
        tflite_instances=max(s.num_tflite_pools, 0),
        batching=batching,
        onnx_intra_op_threads=s.onnx_intra_op_threads,
        onnx_inter_op_threads=s.onnx_inter_op_threads,
        tf_intra_op_threads=s.tensorflow_intra_op_parallelism or s.tensorflow_session_parallelism,
        tf_inter_op_threads=s.tensorflow_inter_op_parallelism or s.tensorflow_session_parallelism,
    )
    export = ExportOptions(
        tags=tuple(t.strip() for t in s.saved_model_tags.split(",") if t.strip()) or ("serve",),
        atol=s.parity_atol,
        rtol=s.parity_rtol,
        max_batch=batching.max_batch_size,
        custom_op_libraries=libraries,
    )
    return engine, export
