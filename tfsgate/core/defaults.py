"""Defaults more than one part relies on, written once."""

from __future__ import annotations

from pathlib import Path

# Largest batch Triton may form for a batching signature (``max_batch_size`` in its config); the
# gateway's coalescer stacks at most this many rows into one call.
DEFAULT_MAX_BATCH_SIZE = 128

# State directory (catalog, logs) when TFSGATE_HOME is not set, relative to the working directory.
DEFAULT_HOME = "var"
CATALOG_FILE = "catalog.db"

DEFAULT_ADMIN_PORT = 8502

# A role's exit status when it fails to start: TF Serving's main() returns -1. The gateway role's
# supervisor stops at a worker that exits so (a restart would fail alike), and restarts others.
FAILED_START_EXIT = 255

# Every tfsgate process's log lines (the CLI's roles and the gateway workers' supervisor).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def default_database_url(home: Path | str) -> str:
    """The catalog under a state directory: a SQLite file, the embedded default."""
    return f"sqlite:///{Path(home) / CATALOG_FILE}"


# gRPC channels to Triton (the gateway's inference channels, the control plane's repository
# clients). gRPC's default reconnect backoff grows to 120 s: a Triton that restarted would be
# ignored for up to two minutes. One second keeps reconnection prompt without spinning.
TRITON_CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
