"""TF Serving's inputs: the model config file and base-path version discovery.

Pure logic plus file system access; no Triton, catalog or TensorFlow imports. Version policies are
the shared kernel's (``tfsgate.core.version_policy``).
"""

from control_plane.sources.base_path import (
    SourceError,
    discover_versions,
    no_versions_message,
    parse_version,
)
from control_plane.sources.model_config import (
    ModelConfigError,
    ModelSetConfig,
    ModelSpecConfig,
    config_from_proto,
    load_model_config,
    parse_model_config,
    single_model_config,
)

__all__ = [
    "ModelConfigError",
    "ModelSetConfig",
    "ModelSpecConfig",
    "SourceError",
    "config_from_proto",
    "discover_versions",
    "load_model_config",
    "no_versions_message",
    "parse_model_config",
    "parse_version",
    "single_model_config",
]
