"""TF Serving's batching flags on Triton: ``--enable_batching`` and ``--batching_parameters_file``.

The file is a text ``tensorflow.serving.BatchingParameters``. That message is not in
tensorflow-serving-api; ``tfsgate.core.config_protos`` builds its descriptor from the documented
field names and numbers (tensorflow_serving/servables/tensorflow/session_bundle_config.proto) and
parses it with protobuf's ``text_format``, failing as TF Serving's ``ParseProtoTextFile`` does.

Mapping (issue 8), per batched signature:

=====================================  =====================================================
BatchingParameters                     Triton config / runner
=====================================  =====================================================
max_batch_size                         ``preferred_batch_size: [max]`` (the batcher's target),
                                       the runner's ``execution_batch_size`` (rows per call)
batch_timeout_micros                   ``max_queue_delay_microseconds`` (0 without batching)
allowed_batch_sizes                    ``preferred_batch_size``
max_enqueued_batches x max_batch_size  not applied: any ``default_queue_policy`` makes the
                                       embedded Triton 2.51 hold some requests ~500 ms
                                       (measured: 4358 -> 361 requests/s, p99 17 -> 514 ms
                                       on the MLP), so the queue is unbounded
num_batch_threads                      ``instance_group.count``
enable_large_batch_splitting,          requests larger than max_batch_size: run in chunks of
max_execution_batch_size               max_execution_batch_size; without splitting refused
                                       with TF Serving's "Task size ... is larger than
                                       maximum input batch size ..."
=====================================  =====================================================

Triton's own ``max_batch_size`` is always 2**31-1: it caps the rows of a single request, which TF
Serving does not (without batching it runs any request as one Session::Run), so a 3,000,000-row
request is one Triton call; Triton's batcher can exceed the preferred size when requests queue up,
so the runner's ``execution_batch_size`` is what bounds one engine call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonclient.grpc import model_config_pb2 as mc

from tfsgate.core import config_protos
from tfsgate.core.defaults import DEFAULT_MAX_BATCH_SIZE

TRITON_MAX_BATCH_SIZE = 2**31 - 1
# TF's SharedBatchScheduler QueueOptions default (shared_batch_scheduler.h).
TF_DEFAULT_MAX_ENQUEUED_BATCHES = 10


class BatchingConfigError(ValueError):
    """The batching parameters file cannot be read or is not a valid BatchingParameters."""


BatchingParameters = config_protos.BatchingParameters


def parse_batching_parameters(text: str, source: str = "<text>") -> Any:
    """A ``BatchingParameters`` message from its text form (TF Serving's errors)."""
    try:
        return config_protos.parse_text(text, BatchingParameters(), source)
    except config_protos.ConfigFileError as exc:
        raise BatchingConfigError(f"{exc.parse_error}\n{exc.message}".strip()) from None


PER_MODEL_FILE = "batching_params.pbtxt"  # TF Serving's kBatchingParamsFilename


def read_per_model(version_dir: Path) -> BatchingConfig | None:
    """A version's own ``batching_params.pbtxt`` (None without one); BatchingConfigError with TF
    Serving's parse error when it is not a valid BatchingParameters."""
    path = version_dir / PER_MODEL_FILE
    if not path.is_file():
        return None
    return BatchingConfig.from_message(parse_batching_parameters(path.read_text(), str(path)))


@dataclass(frozen=True)
class BatchingConfig:
    """What the Triton configs of batched signatures get from the batching flags."""

    enabled: bool = False
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_micros: int = 0
    allowed_batch_sizes: tuple[int, ...] = ()
    max_enqueued_batches: int = TF_DEFAULT_MAX_ENQUEUED_BATCHES
    num_batch_threads: int | None = None
    large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_flags(cls, enable_batching: bool, parameters_file: str = "") -> BatchingConfig:
        """TF Serving reads the file only with ``--enable_batching``; so do we."""
        if not enable_batching:
            return cls()
        if not parameters_file:
            return cls(enabled=True)
        try:
            text = config_protos.read_file(parameters_file)
        except config_protos.ConfigFileError as exc:
            raise BatchingConfigError(exc.message) from None
        return cls.from_message(parse_batching_parameters(text, parameters_file))

    @classmethod
    def from_message(cls, message: Any) -> BatchingConfig:
        def value(name: str, default: Any) -> Any:
            return getattr(message, name).value if message.HasField(name) else default

        max_batch_size = int(value("max_batch_size", DEFAULT_MAX_BATCH_SIZE))
        allowed = tuple(int(v) for v in message.allowed_batch_sizes)
        if max_batch_size <= 0:
            raise BatchingConfigError("max_batch_size must be positive")
        if allowed and (list(allowed) != sorted(set(allowed)) or allowed[-1] != max_batch_size):
            # bundle_factory_util.cc: WrapSessionForBatching
            raise BatchingConfigError(
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{allowed[-1]}; expected {max_batch_size}"
                if list(allowed) == sorted(set(allowed))
                else "allowed_batch_sizes entries must be monotonically increasing"
            )
        notes = []
        if message.HasField("max_enqueued_batches"):
            notes.append(
                "max_enqueued_batches has no effect: a Triton queue policy delays requests by"
                " ~500 ms in the embedded Triton, so its queue is unbounded"
            )
        if message.HasField("thread_pool_name"):
            notes.append("thread_pool_name has no effect: each Triton instance is its own pool")
        if message.pad_variable_length_inputs:
            notes.append("pad_variable_length_inputs has no effect: Triton batches equal shapes")
        threads = value("num_batch_threads", None)
        execution = value("max_execution_batch_size", None)
        return cls(
            enabled=True,
            max_batch_size=max_batch_size,
            batch_timeout_micros=int(value("batch_timeout_micros", 0)),
            allowed_batch_sizes=allowed,
            max_enqueued_batches=int(
                value("max_enqueued_batches", TF_DEFAULT_MAX_ENQUEUED_BATCHES)
            ),
            num_batch_threads=None if threads is None else int(threads),
            large_batch_splitting=bool(value("enable_large_batch_splitting", False)),
            max_execution_batch_size=None if execution is None else int(execution),
            notes=tuple(notes),
        )

    @property
    def execution_batch_size(self) -> int:
        """Rows per engine call: 0 (a whole dynamic batch) without batching, else TF's bound."""
        if not self.enabled:
            return 0
        if self.large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    def apply(self, config: mc.ModelConfig) -> None:
        """Set the batching fields of a batched signature's config."""
        config.max_batch_size = TRITON_MAX_BATCH_SIZE
        batcher = config.dynamic_batching
        batcher.SetInParent()
        del batcher.preferred_batch_size[:]
        batcher.preferred_batch_size.extend(self.allowed_batch_sizes or [self.max_batch_size])
        batcher.max_queue_delay_microseconds = self.batch_timeout_micros if self.enabled else 0
        if self.enabled and self.num_batch_threads:
            for group in config.instance_group:
                group.count = self.num_batch_threads
        config.parameters["execution_batch_size"].string_value = str(self.execution_batch_size)
        if self.enabled:
            config.parameters["max_request_rows"].string_value = str(self.max_batch_size)
            config.parameters["large_batch_splitting"].string_value = (
                "true" if self.large_batch_splitting else "false"
            )
