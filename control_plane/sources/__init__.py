"""TF Serving's inputs: the model config file, base-path version discovery, version policies.

Pure logic plus file system access; no Triton, catalog or TensorFlow imports.
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
from control_plane.sources.poller import (
    BasePathWatcher,
    ConfigFileWatcher,
    ModelVersions,
    scan_model,
    scan_models,
)
from control_plane.sources.version_policy import (
    All,
    Latest,
    Specific,
    VersionPolicy,
    policy_from_proto,
    select_versions,
)

__all__ = [
    "All",
    "BasePathWatcher",
    "ConfigFileWatcher",
    "Latest",
    "ModelConfigError",
    "ModelSetConfig",
    "ModelSpecConfig",
    "ModelVersions",
    "SourceError",
    "Specific",
    "VersionPolicy",
    "config_from_proto",
    "discover_versions",
    "load_model_config",
    "no_versions_message",
    "parse_model_config",
    "parse_version",
    "policy_from_proto",
    "scan_model",
    "scan_models",
    "select_versions",
    "single_model_config",
]
