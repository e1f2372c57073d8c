"""Settings for ``tfsgate serve``: TF Serving's flag names and defaults plus tfsgate's own.

Built from flags by the CLI (or from ``TFSGATE_*`` environment variables), never at import time.
``MODEL_NAME`` / ``MODEL_BASE_PATH`` work as in TF Serving's Docker image.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tfsgate.core.defaults import DEFAULT_ADMIN_PORT, DEFAULT_HOME, default_database_url


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TFSGATE_", populate_by_name=True, extra="ignore")

    # -- TF Serving's flags ----------------------------------------------------------------------
    port: int = Field(8500, description="gRPC port (TF Serving's --port)")
    rest_api_port: int = Field(8501, description="REST port; 0 disables REST")
    model_name: str = Field(
        "default",
        validation_alias=AliasChoices("model_name", "TFSGATE_MODEL_NAME", "MODEL_NAME"),
        description="name of the single model served with --model_base_path",
    )
    model_base_path: str = Field(
        "",
        validation_alias=AliasChoices(
            "model_base_path", "TFSGATE_MODEL_BASE_PATH", "MODEL_BASE_PATH"
        ),
        description="directory holding the model's integer-named version directories",
    )
    model_config_file: str = Field("", description="ModelServerConfig file (text or JSON)")
    model_config_file_poll_wait_seconds: int = Field(
        0, description="re-read --model_config_file this often; 0 = read once"
    )
    file_system_poll_wait_seconds: int = Field(
        1, description="scan base paths for new versions this often; 0 = once"
    )
    enable_batching: bool = Field(False, description="accepted for compatibility: Triton batches")
    batching_parameters_file: str = ""
    monitoring_config_file: str = ""
    rest_api_timeout_in_ms: int = Field(30000, description="REST request deadline")
    rest_api_enable_cors_support: bool = False
    grpc_socket_path: str = Field("", description="also serve gRPC on this Unix socket")
    allow_version_labels_for_unavailable_models: bool = False
    grpc_tensor_content_answers: bool = Field(
        False,
        description="gRPC Predict answers in tensor_content (raw bytes) instead of TF Serving's"
        " typed *_val fields; faster for large outputs, for clients that read tensor_content",
    )

    # -- tfsgate's own ----------------------------------------------------------------------------
    triton_url: str = Field("", description="external Triton gRPC host:port; empty = embedded")
    database_url: str = Field("", description="catalog URL; default SQLite under home")
    admin_port: int = Field(DEFAULT_ADMIN_PORT, description="admin REST API port; 0 disables it")
    model_repository: str = Field("model_repository", description="generated Triton repository")
    home: str = Field(
        DEFAULT_HOME,
        # Not "home": aliases are also environment names, and $HOME is the user's home.
        validation_alias=AliasChoices("TFSGATE_HOME"),
        description="state directory (catalog, logs)",
    )
    host: str = Field("0.0.0.0", description="address the gRPC and REST ports bind")
    log_level: str = "info"

    @property
    def home_path(self) -> Path:
        return Path(self.home).resolve()

    @property
    def catalog_url(self) -> str:
        return self.database_url or default_database_url(self.home_path)

    @property
    def repository_path(self) -> Path:
        return Path(self.model_repository).resolve()
