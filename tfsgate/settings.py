"""Settings for ``tfsgate serve``: every ``tensorflow_model_server`` flag plus tfsgate's own.

Each field is one flag, with TF Serving's name and default and what tfsgate does with it (see
``tfsgate/flags.py``); ``docs/flags.md`` is rendered from these fields. Built from flags by the CLI
(or from ``TFSGATE_*`` environment variables), never at import time. ``MODEL_NAME`` /
``MODEL_BASE_PATH`` work as in TF Serving's Docker image.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings, SettingsConfigDict

from tfsgate.core.defaults import DEFAULT_ADMIN_PORT, DEFAULT_HOME, default_database_url
from tfsgate.flags import Treatment, flag, own_flag

NO_EFFECT = Treatment.NO_EFFECT
PARTLY = Treatment.PARTLY


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TFSGATE_", populate_by_name=True, extra="ignore")

    # -- tensorflow_model_server's flags, in main.cc's order -------------------------------------
    port: int = flag(
        8500,
        "gRPC port; 0 serves gRPC on --grpc_socket_path only (one of the two is required)",
    )
    grpc_socket_path: str = flag("", "also serve gRPC on this Unix socket")
    rest_api_port: int = flag(
        8501,
        "REST port; 0 disables REST, and so does the gRPC port's number (logged, as by TF Serving)",
        tf_default="0 (its Docker image passes 8501)",
    )
    rest_api_num_threads: int = flag(
        0,
        "at most this many REST requests are processed at once, the rest wait (TF Serving's"
        " thread pool); 0 = no limit, the REST door is asynchronous and needs no threads",
        tf_default="4 × CPUs",
    )
    rest_api_timeout_in_ms: int = flag(30000, "REST request deadline; DEADLINE_EXCEEDED/504")
    rest_api_enable_cors_support: bool = flag(False, "CORS headers on REST answers")
    enable_batching: bool = flag(
        False,
        "Triton's dynamic batching with TF Serving's bounds and queue delay; without it Triton"
        " still merges concurrent requests, with no queue delay",
    )
    allow_version_labels_for_unavailable_models: bool = flag(
        False, "a config's labels may name versions that are not AVAILABLE yet"
    )
    batching_parameters_file: str = flag(
        "",
        "BatchingParameters text: max_batch_size -> preferred batch size and rows per engine"
        " call, batch_timeout_micros -> queue delay, allowed_batch_sizes -> preferred sizes,"
        " num_batch_threads -> instances (max_enqueued_batches has no effect: docs/engine.md)",
    )
    enable_per_model_batching_parameters: bool = flag(
        False,
        "with --enable_batching, a version's batching_params.pbtxt replaces the server's"
        " BatchingParameters for its model (the newest version's, one Triton config serving them"
        " all), and a model without one is not batched, as in TF Serving",
    )
    model_config_file: str = flag(
        "", "ModelServerConfig file (text, or the same message as JSON); wins over --model_name"
    )
    model_config_file_poll_wait_seconds: int = flag(
        0, "re-read --model_config_file this often; 0 = read once"
    )
    model_name: str = flag(
        "default",
        "name of the model served from --model_base_path (also $MODEL_NAME)",
        validation_alias=AliasChoices("model_name", "TFSGATE_MODEL_NAME", "MODEL_NAME"),
    )
    model_base_path: str = flag(
        "",
        "directory holding the model's integer-named versions (also $MODEL_BASE_PATH)",
        validation_alias=AliasChoices(
            "model_base_path", "TFSGATE_MODEL_BASE_PATH", "MODEL_BASE_PATH"
        ),
    )
    num_load_threads: int = flag(
        0,
        "Triton loads models in parallel; the signatures of a version load together",
        treatment=NO_EFFECT,
    )
    num_unload_threads: int = flag(0, "Triton unloads in parallel", treatment=NO_EFFECT)
    max_num_load_retries: int = flag(
        5,
        "a version whose Triton load fails stays LOADING and is retried this many times before"
        " it is FAILED (END with the last failure); a SavedModel that cannot be converted fails"
        " at once",
    )
    load_retry_interval_micros: int = flag(
        60_000_000, "wait between load retries (no pass holds the reconciler meanwhile)"
    )
    file_system_poll_wait_seconds: int = flag(
        1, "scan base paths for new versions this often; 0 or negative: only at start-up"
    )
    flush_filesystem_caches: bool = flag(
        True, "no file system caches are held by tfsgate", treatment=NO_EFFECT
    )
    tensorflow_session_parallelism: int = flag(
        0, "both thread pools of the TensorFlow runner when the two flags below are 0"
    )
    tensorflow_session_config_file: str = flag(
        "",
        "text ConfigProto for the TensorFlow runner's sessions; the thread flags and"
        " --per_process_gpu_memory_fraction override its fields as in TF Serving",
    )
    tensorflow_intra_op_parallelism: int = flag(0, "the TensorFlow runner's intra-op threads")
    tensorflow_inter_op_parallelism: int = flag(0, "the TensorFlow runner's inter-op threads")
    use_alts_credentials: bool = flag(False, "gRPC port with Google ALTS credentials (GCP only)")
    ssl_config_file: str = flag(
        "",
        "text SSLConfig: TLS with server_key/server_cert on the gRPC port and socket and (tfsgate's"
        " addition) on the REST port; custom_ca + client_verify require client certificates",
    )
    platform_config_file: str = flag(
        "", "PlatformConfigMap is not read: TensorFlow is the one platform", treatment=NO_EFFECT
    )
    per_process_gpu_memory_fraction: float = flag(
        0.0,
        "gpu_options.per_process_gpu_memory_fraction of the TensorFlow runner's sessions (it"
        " matters where the worker sees a GPU: the embedded Triton runs models on CPU)",
    )
    saved_model_tags: str = flag("serve", "the MetaGraph loaded, converted and served")
    grpc_channel_arguments: str = flag(
        "",
        "comma-separated key=value gRPC server arguments (integers as ints), e.g."
        " grpc.max_connection_age_ms=2000. Any key but the message-size and port-reuse ones"
        " moves the gRPC door from its own HTTP/2 server to grpc.aio's"
        " (docs/compatibility.md)",
    )
    grpc_max_threads: int = flag(
        0,
        "at most this many gRPC calls at once, more get RESOURCE_EXHAUSTED as from TF Serving's"
        " exhausted thread quota; 0 = no limit, the gRPC door is asynchronous",
        tf_default="4 × CPUs",
    )
    enable_model_warmup: bool = flag(
        True,
        "assets.extra/tf_serving_warmup_requests replayed through Triton before a version is"
        " AVAILABLE; count and time recorded on the version",
    )
    num_request_iterations_for_warmup: int = flag(
        0, "times each warm-up record is replayed (0: once)"
    )
    version: bool = flag(False, "print the versions and exit")
    monitoring_config_file: str = flag(
        "",
        "text MonitoringConfig: prometheus_config.enable/path choose whether and where metrics"
        " are served on the REST port (without the file tfsgate serves them at TF Serving's"
        " default path)",
    )
    remove_unused_fields_from_bundle_metagraph: bool = flag(
        True, "the gateway keeps only signatures", treatment=NO_EFFECT
    )
    prefer_tflite_model: bool = flag(
        False,
        "a version directory's model.tflite is served instead of its SavedModel (LiteRT inside"
        " Triton; a directory holding only model.tflite is a version), signatures from the model's"
        " signature_defs_metadata, else its signature runners, else TF Serving's generated"
        " serving_default (docs/engine.md)",
    )
    num_tflite_pools: int = flag(
        0,
        "Triton instances of each TFLite signature, one interpreter each (0: as the other"
        " runners, num_batch_threads or 1)",
        tf_default="CPUs",
    )
    num_tflite_interpreters_per_pool: int = flag(
        1,
        "one interpreter per Triton instance; Triton's dynamic batching merges requests instead",
        treatment=NO_EFFECT,
    )
    enable_signature_method_name_check: bool = flag(
        False, "Classify/Regress/MultiInference need the signature's classify/regress method_name"
    )
    xla_cpu_compilation_enabled: bool = flag(
        False, "the runners keep TensorFlow's own XLA settings", treatment=NO_EFFECT
    )
    xla_gpu_compilation_enabled: bool = flag(
        False, "the runners keep TensorFlow's own XLA settings", treatment=NO_EFFECT
    )
    enable_profiler: bool = flag(
        True,
        "registers tensorflow.ProfilerService on the gRPC port; it answers UNIMPLEMENTED with the"
        " reason (see docs/compatibility.md)",
        treatment=PARTLY,
    )
    thread_pool_factory_config_file: str = flag(
        "", "ThreadPoolConfig is not read", treatment=NO_EFFECT
    )
    mixed_precision: str = flag(
        "",
        "bfloat16: oneDNN bfloat16 auto mixed precision in the TensorFlow runner's sessions (ONNX"
        " Runtime and LiteRT serve their signatures unchanged); other values are logged as"
        " unsupported, as by TF Serving",
        treatment=PARTLY,
    )
    skip_initialize_tpu: bool = flag(
        False, "tfsgate runs on CPUs (and GPUs through Triton), never on TPUs", treatment=NO_EFFECT
    )
    enable_grpc_healthcheck_service: bool = flag(
        False,
        "grpc.health.v1 is always served; with the flag also for TF Serving's service names"
        " ModelService and PredictionService",
    )
    enable_serialization_as_tensor_content: bool = flag(
        False,
        "gRPC Predict answers in tensor_content instead of the typed *_val fields",
        aliases=["grpc_tensor_content_answers"],
    )

    # -- tfsgate's own ----------------------------------------------------------------------------
    triton_url: str = own_flag(
        "",
        "external Triton gRPC host:port (repeatable, or comma-separated); empty = embedded",
        repeatable=True,
    )
    triton_http_url: str = own_flag(
        "",
        "the HTTP endpoint (http://host:8000) of each --triton_url, in the same order: gateways"
        " then send inferences there (binary tensors over HTTP/1.1 cost a Python gateway a third"
        " of the CPU of gRPC); empty = inferences over --triton_url's gRPC",
        repeatable=True,
    )
    triton_repository_key: str = own_flag(
        "",
        "the key of Triton's restricted repository protocol"
        " (--grpc-restricted-protocol=model-repository:tfsgate-repository-key=KEY), sent with every"
        " repository call; also $TFSGATE_TRITON_REPOSITORY_KEY",
    )
    triton_push_model_files: bool = own_flag(
        False,
        "send each model's files with its load request (Triton's file overrides), for Triton"
        " instances that share no volume with --model_repository",
    )
    database_url: str = own_flag("", "catalog URL; default SQLite under home")
    rest_large_bodies: int = own_flag(
        2,
        "REST requests with a body over 1 MB read at once (per gateway process); others wait,"
        " their reading paused, so memory stays bounded under large JSON tensors",
        ge=1,
    )
    gateway_workers: int = own_flag(
        1,
        "processes serving the gRPC and REST ports (SO_REUSEPORT), each following the routing"
        " feed with its own routing table (tfsgate serve: beside the control plane, which keeps"
        " this process); 1 = this process alone",
        ge=1,
    )
    control_plane_socket: str = own_flag(
        "",
        "tfsgate gateway: a tfsgate serve's Unix socket to forward ModelService's"
        " HandleReloadConfigRequest to (set by tfsgate serve for its --gateway_workers); empty:"
        " that call is UNIMPLEMENTED",
    )
    reuse_port: bool = own_flag(
        False,
        "bind the gRPC and REST ports with SO_REUSEPORT, beside other gateway processes (set"
        " for each of --gateway_workers' processes)",
    )
    admin_port: int = own_flag(DEFAULT_ADMIN_PORT, "admin REST API port; 0 disables it")
    model_repository: str = own_flag("model_repository", "generated Triton repository")
    home: str = own_flag(
        DEFAULT_HOME,
        "state directory (catalog, logs); also $TFSGATE_HOME",
        # Not "home": aliases are also environment names, and $HOME is the user's home.
        validation_alias=AliasChoices("TFSGATE_HOME"),
    )
    host: str = own_flag("0.0.0.0", "address the gRPC and REST ports bind")
    log_level: str = own_flag("info", "debug, info, warning or error")
    runner: str = own_flag(
        "",
        "auto|tensorflow|onnxruntime for the models named by flags or the config file: auto serves"
        " a signature with ONNX Runtime when its conversion passes the parity check; empty keeps"
        " each model's setting (admin API; default auto)",
    )
    parity_atol: float = own_flag(1e-5, "absolute tolerance of the ONNX parity check (floats)")
    parity_rtol: float = own_flag(
        1e-4, "relative tolerance of the ONNX parity check, times the row's largest |value|"
    )
    onnx_intra_op_threads: int = own_flag(1, "ONNX Runtime intra-op threads per Triton instance")
    onnx_inter_op_threads: int = own_flag(1, "ONNX Runtime inter-op threads per Triton instance")
    triton_flavor: str = own_flag(
        "cpu",
        "cpu or gpu: with an external GPU --triton_url, ONNX signatures run on the onnxruntime"
        " backend with KIND_GPU instances and TensorRT (examples-parsing ones as ensembles)",
    )
    tensorrt_precision: str = own_flag("FP16", "TensorRT precision_mode on a GPU Triton")
    tensorrt_engine_cache: bool = own_flag(True, "TensorRT engine cache on a GPU Triton")
    gpu_instances: int = own_flag(1, "KIND_GPU instances per ONNX signature on a GPU Triton")
    model_settings_file: str = own_flag(
        "",
        'JSON {"models": {name: {"runner": ..., "response_cache": true}}}: per-model settings'
        " of ours for the models of the config file; re-read when it changes",
    )
    custom_op_libraries: str = own_flag(
        "",
        "custom op libraries the TensorFlow runner loads before a SavedModel (repeatable, or"
        " comma-separated): a path to a .so (tf.load_op_library) or a Python package imported for"
        " its ops (tensorflow_text); a SavedModel needing an op none registers fails with the"
        " op's name",
        repeatable=True,
    )
    response_cache_bytes: int = own_flag(
        64 << 20, "size of the embedded Triton's response cache (models opt in); 0 disables it"
    )

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @property
    def triton_urls(self) -> tuple[str, ...]:
        """The external Triton instances (``--triton_url`` repeated or comma-separated)."""
        return tuple(u.strip() for u in self.triton_url.split(",") if u.strip())

    @property
    def triton_inference_urls(self) -> tuple[str, ...]:
        """Where gateways send inferences to the external Tritons: ``--triton_http_url`` when
        given, else ``--triton_url`` (gRPC)."""
        http = tuple(u.strip() for u in self.triton_http_url.split(",") if u.strip())
        return http or self.triton_urls

    @property
    def catalog_url(self) -> str:
        return self.database_url or default_database_url(self.home_path)

    @property
    def repository_path(self) -> Path:
        return Path(self.model_repository).resolve()
