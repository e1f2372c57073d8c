"""The reconciler's settings and the actor name its catalog writes carry."""

from __future__ import annotations

from dataclasses import dataclass, field

from control_plane.converter import gpu
from control_plane.converter.triton_config import EngineOptions
from tfsgate.core.defaults import DEFAULT_MAX_BATCH_SIZE

ACTOR = "reconciler"  # the audit log's actor for every change a pass makes


@dataclass(frozen=True)
class ReconcilerSettings:
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    allow_version_labels_for_unavailable_models: bool = False
    # How long requests routed to a retiring version get to reach Triton before it is unloaded.
    drain_seconds: float = 0.5
    # TF Serving's --max_num_load_retries / --load_retry_interval_micros (its defaults are 5 and
    # 60 s; the composition root passes the flags). 0: a failed load is FAILED at once.
    max_load_retries: int = 0
    load_retry_interval_seconds: float = 60.0
    # Threads, batching and instances every signature's Triton config carries.
    engine: EngineOptions = field(default_factory=EngineOptions)
    # ``--runner`` of the command line: the runner setting of the models named by flags or the
    # config file (None keeps what the catalog says, e.g. set through the admin API).
    runner: str | None = None
    # "gpu": an external GPU Triton gets onnxruntime_onnx models and ensembles (gpu.py).
    flavor: str = "cpu"
    gpu_options: gpu.GpuOptions = field(default_factory=lambda: gpu.GpuOptions())
    # Our per-model settings for models of the config file (see desired.ModelSettingsFile).
    model_settings_file: str = ""
    # --enable_model_warmup and --num_request_iterations_for_warmup (0 = once, as TF Serving).
    warmup: bool = True
    warmup_iterations: int = 1
    # --enable_per_model_batching_parameters (with --enable_batching): a version's own
    # batching_params.pbtxt replaces the server's parameters, and a model without one is not
    # batched (bundle_factory_util.cc: GetPerModelBatchingParams).
    per_model_batching: bool = False
