"""Settings of the admin API: its port and bind address, bearer token and model roots.

Built by a factory from ``ServeSettings`` (port, host, label rule) plus ``TFSGATE_*`` environment
variables (token, roots), never at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tfsgate.core.defaults import DEFAULT_ADMIN_PORT

LOOPBACK = "127.0.0.1"


class ServeLike(Protocol):
    """The fields of ``tfsgate.settings.ServeSettings`` the admin API reads."""

    host: str
    admin_port: int
    allow_version_labels_for_unavailable_models: bool


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TFSGATE_", extra="ignore")

    admin_port: int = Field(
        default=DEFAULT_ADMIN_PORT, description="admin REST port; 0 picks a free one"
    )
    host: str = Field(default="0.0.0.0", description="bind address when a token is configured")
    admin_token: SecretStr | None = Field(
        default=None, description="bearer token every mutation needs (TFSGATE_ADMIN_TOKEN)"
    )
    model_roots: str = Field(
        default="",
        description="extra directories (os.pathsep-separated, like PATH) that registered base "
        "paths and imported versions may come from (TFSGATE_MODEL_ROOTS)",
    )
    allow_version_labels_for_unavailable_models: bool = False

    @classmethod
    def from_serve(cls, serve: ServeLike) -> AdminSettings:
        """The admin settings of a ``tfsgate serve`` run; token and roots come from the env."""
        return cls(
            admin_port=serve.admin_port,
            host=serve.host,
            allow_version_labels_for_unavailable_models=(
                serve.allow_version_labels_for_unavailable_models
            ),
        )

    @property
    def token(self) -> str | None:
        """The configured token; an empty value counts as none."""
        value = self.admin_token.get_secret_value() if self.admin_token else ""
        return value or None

    @property
    def bind_host(self) -> str:
        """Without a token anyone who can connect may mutate, so only local users can connect."""
        return self.host if self.token else LOOPBACK

    def extra_roots(self) -> list[Path]:
        return [Path(p) for p in self.model_roots.split(os.pathsep) if p.strip()]
