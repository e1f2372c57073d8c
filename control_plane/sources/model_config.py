"""``--model_config_file`` parsing and validation, as TF Serving does it, into frozen types.

TF Serving reads the file as a text-format ``ModelServerConfig`` (``ParseProtoTextFile`` in
``model_servers/server.cc``; a failure is "Invalid protobuf file: '<path>'"). tfsgate also accepts
the same message as protobuf JSON (``{"model_config_list": {"config": [...]}}``), an extension:
the text parser is tried first, then the JSON one.

Validation follows ``model_servers/server_core.cc`` (``ValidateModelConfigList``, ``GetPlatform``,
``CreateStoragePathRoutes``) and reuses its messages:

- a model name listed twice: "Illegal to list model X multiple times in config list";
- base paths must be absolute ("Expected model X to have an absolute path or URI; got
  base_path()=Y") unless a root directory is given, which relative paths are joined to
  (``ServerCore::Options::model_config_list_root_dir``; ``tensorflow_model_server`` never sets it,
  so relative paths are rejected by default, as in tensorflow/serving issue #781);
- the platform comes from ``model_platform`` or the deprecated ``model_type``; only
  "tensorflow" exists in the stock server's platform map, anything else is "Model X requests
  unsupported platform Y";
- ``custom_model_config`` is refused ("ModelServer does not yet support custom model config.").

tfsgate is stricter in two places: an empty model name or empty base path is an error, and base
paths must be local (or ``file://``): there is no GCS/S3 file system here.

Placeholders such as ``${TEST_HALF_PLUS_TWO_DIR}`` are NOT expanded: TF Serving does not expand
variables (its own tests substitute them before starting the server), so neither does tfsgate.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from google.protobuf import json_format, text_format

from tfsgate.core.config_protos import io_error, parse_error_line
from tfsgate.core.protos import model_server_config_pb2
from tfsgate.core.routing_table import LoggingRoute
from tfsgate.core.status import Code
from tfsgate.core.version_policy import DEFAULT_POLICY, VersionPolicy

logger = logging.getLogger(__name__)

TENSORFLOW_PLATFORM = "tensorflow"
"""The one platform TF Serving's stock server registers (``kTensorFlowModelPlatform``)."""

# io::ParseURI in TensorFlow: a scheme is [a-zA-Z][0-9a-zA-Z.]* followed by "://".
_URI_SCHEME = re.compile(r"^([A-Za-z][0-9A-Za-z.]*)://")


class ModelConfigError(Exception):
    """A model config that cannot be read, parsed or accepted: TF Serving's status (code and a
    one-line message) and, for a text-format parse failure, protobuf's "Error parsing text-format
    tensorflow.serving.ModelServerConfig: <line>:<column>: <reason>" line that TF Serving logs."""

    def __init__(
        self, message: str, code: Code = Code.INVALID_ARGUMENT, parse_error: str = ""
    ) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code
        self.parse_error = parse_error


@dataclass(frozen=True)
class ModelSpecConfig:
    """One served model: name, absolute base path, platform, version policy and labels."""

    name: str
    base_path: Path
    platform: str = TENSORFLOW_PLATFORM
    policy: VersionPolicy = DEFAULT_POLICY
    labels: dict[str, int] = field(default_factory=dict)
    # TF Serving's logging_config: sampling rate, collector type and filename prefix.
    logging: LoggingRoute | None = None


@dataclass(frozen=True)
class ModelSetConfig:
    """The desired model set of one config file.

    ``specified`` is False when the file set neither ``model_config_list`` nor
    ``custom_model_config`` (e.g. an empty file). TF Serving takes no action for such a config
    on reload ("Taking no action for empty config."), unlike an explicit empty
    ``model_config_list {}``, which removes every model.
    """

    models: tuple[ModelSpecConfig, ...] = ()
    specified: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        """Model names in file order."""
        return tuple(model.name for model in self.models)

    def by_name(self) -> dict[str, ModelSpecConfig]:
        """Models keyed by name (names are unique once validated)."""
        return {model.name: model for model in self.models}


def load_model_config(path: Path | str, *, root_dir: Path | str | None = None) -> ModelSetConfig:
    """Read and validate a ``--model_config_file``; raise :class:`ModelConfigError` on failure."""
    return parse_model_config(read_config_text(path), source=str(path), root_dir=root_dir)


def read_config_text(path: Path | str) -> str:
    """Read a config file as UTF-8 text; raise :class:`ModelConfigError` when unreadable."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        error = io_error(str(path), exc)  # TF's "<path>; No such file or directory"
        raise ModelConfigError(error.message, error.code) from exc
    except UnicodeDecodeError as exc:
        raise ModelConfigError(f"Model config file '{path}' is not UTF-8: {exc}") from exc


def parse_model_config(
    text: str, *, source: str = "<string>", root_dir: Path | str | None = None
) -> ModelSetConfig:
    """Parse text-format or JSON ``ModelServerConfig`` text and validate it.

    ``source`` names the file in error messages. ``root_dir`` (absolute) is what relative base
    paths are joined to; without it they are rejected, as by ``tensorflow_model_server``.
    """
    return config_from_proto(_parse_proto(text, source), source=source, root_dir=root_dir)


def single_model_config(
    name: str, base_path: Path | str, *, root_dir: Path | str | None = None
) -> ModelSetConfig:
    """The config ``--model_name``/``--model_base_path`` stand for (``BuildSingleModelConfig``).

    One TensorFlow model with the default policy, validated like a config file entry.
    """
    proto = model_server_config_pb2.ModelServerConfig()
    model = proto.model_config_list.config.add()
    model.name = name
    model.base_path = str(base_path)
    model.model_platform = TENSORFLOW_PLATFORM
    return config_from_proto(proto, source="--model_base_path", root_dir=root_dir)


def config_from_proto(
    proto: Any, *, source: str = "<proto>", root_dir: Path | str | None = None
) -> ModelSetConfig:
    """Validate a ``ModelServerConfig`` message and convert it to :class:`ModelSetConfig`.

    Also the entry point for gRPC ``HandleReloadConfigRequest``, which carries the message.
    """
    choice = proto.WhichOneof("config")
    if choice is None:
        return ModelSetConfig(models=(), specified=False)
    if choice == "custom_model_config":
        raise ModelConfigError(f"{source}: ModelServer does not yet support custom model config.")
    configs = list(proto.model_config_list.config)
    _check_names(configs, source)
    root = _check_root_dir(root_dir, source)
    models = tuple(_model_from_proto(config, source, root) for config in configs)
    return ModelSetConfig(models=models)


def _parse_proto(text: str, source: str) -> Any:
    """Try text format, then JSON; report the error of the format the text looks like."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
        return config
    except text_format.ParseError as exc:
        text_error = parse_error_line(exc, config.DESCRIPTOR.full_name)
    config = model_server_config_pb2.ModelServerConfig()
    try:
        json_format.Parse(text, config)
        return config
    except json_format.ParseError as exc:
        json_error = str(exc)
    if text.lstrip().startswith("{"):
        raise ModelConfigError(f"Invalid protobuf file: '{source}': JSON: {json_error}")
    # ParseProtoTextFile's status; protobuf's own line says where and why.
    raise ModelConfigError(f"Invalid protobuf file: '{source}'", parse_error=text_error)


def _check_names(configs: list[Any], source: str) -> None:
    seen: set[str] = set()
    for config in configs:
        if not config.name:
            raise ModelConfigError(f"{source}: a model config has an empty name")
        if config.name in seen:
            raise ModelConfigError(
                f"{source}: Illegal to list model {config.name} multiple times in config list"
            )
        seen.add(config.name)


def _check_root_dir(root_dir: Path | str | None, source: str) -> str | None:
    if root_dir is None:
        return None
    root = str(root_dir)
    if not os.path.isabs(root):
        raise ModelConfigError(
            f"{source}: Expected non-empty absolute path or URI; "
            f"got model_config_list_root_dir={root}"
        )
    return root


def _model_from_proto(config: Any, source: str, root_dir: str | None) -> ModelSpecConfig:
    return ModelSpecConfig(
        name=config.name,
        base_path=_base_path(config.name, config.base_path, source, root_dir),
        platform=_platform(config, source),
        policy=VersionPolicy.from_proto(config.model_version_policy),
        labels=_labels(config.version_labels),
        logging=_logging(config, source),
    )


def _logging(config: Any, source: str) -> LoggingRoute | None:
    """``logging_config``: sampled request logs (sampling_rate 0 or absent logs nothing)."""
    if not config.HasField("logging_config"):
        return None
    logging_config = config.logging_config
    rate = logging_config.sampling_config.sampling_rate
    if not 0.0 <= rate <= 1.0:
        raise ModelConfigError(
            f"{source}: model {config.name} has sampling_rate {rate}; expected 0..1"
        )
    if rate == 0.0:
        return None
    collector = logging_config.log_collector_config
    return LoggingRoute(rate, collector.filename_prefix, collector.type)


def _base_path(name: str, raw: str, source: str, root_dir: str | None) -> Path:
    """Absolute, normalised local path for ``raw`` (see the module docstring for the rules)."""
    if not raw:
        raise ModelConfigError(f"{source}: model {name} has an empty base_path")
    scheme = _URI_SCHEME.match(raw)
    if scheme and scheme.group(1).lower() != "file":
        raise ModelConfigError(
            f"{source}: model {name} has base_path {raw}; tfsgate reads local paths only"
        )
    path = urlparse(raw).path if scheme else raw
    if os.path.isabs(path):
        return Path(os.path.normpath(path))
    if root_dir is None:
        raise ModelConfigError(
            f"{source}: Expected model {name} to have an absolute path or URI; "
            f"got base_path()={raw}"
        )
    return Path(os.path.normpath(os.path.join(root_dir, path)))


def _platform(config: Any, source: str) -> str:
    """The model's platform, as ``GetPlatform`` and ``CreateStoragePathRoutes`` decide it."""
    model_type = config.model_type
    if model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        logger.warning(
            "%s: Deprecated ModelServerConfig::model_type field used. "
            "Prefer ModelServerConfig::model_platform.",
            source,
        )
        if config.model_platform:
            raise ModelConfigError(
                f"{source}: Illegal setting both ModelServerConfig::model_type (deprecated) "
                "and ModelServerConfig::model_platform."
            )
        if model_type != model_server_config_pb2.TENSORFLOW:
            raise ModelConfigError(
                f"{source}: ModelServerConfig::model_type choice {model_type} not supported."
            )
        return TENSORFLOW_PLATFORM
    if not config.model_platform:
        raise ModelConfigError(
            f"{source}: Illegal setting neither ModelServerConfig::model_type (deprecated) "
            "nor ModelServerConfig::model_platform."
        )
    if config.model_platform != TENSORFLOW_PLATFORM:
        raise ModelConfigError(
            f"{source}: Model {config.name} requests unsupported platform {config.model_platform}"
        )
    return TENSORFLOW_PLATFORM


def _labels(version_labels: Mapping[str, int]) -> dict[str, int]:
    return {str(label): int(version) for label, version in version_labels.items()}
