"""What ``tensorflow_model_server`` checks before it serves, with its texts and exit status.

``Server::BuildAndStart`` (``model_servers/server.cc``) refuses some flag combinations with
INVALID_ARGUMENT; ``main`` prints any start-up failure as "Failed to start server. Error: <status>"
on standard output and returns -1 (exit status 255). A config file that does not parse is also
preceded, on standard error, by protobuf's "Error parsing text-format <type>: ..." line.
"""

from __future__ import annotations

import logging
import sys

from tfsgate.core.status import Code
from tfsgate.flags import without_effect
from tfsgate.settings import ServeSettings

log = logging.getLogger("tfsgate")

FAILED_START_EXIT = 255  # main() returns -1


class StartupError(RuntimeError):
    """A reason ``serve`` cannot start: TF's status and, for a parse failure, protobuf's line."""

    def __init__(
        self, message: str, code: Code = Code.INVALID_ARGUMENT, parse_error: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.parse_error = parse_error


def report_failure(exc: StartupError) -> int:
    """Print the failure as TF Serving does; the exit status to return."""
    if exc.parse_error:
        log.error("%s", exc.parse_error)
    sys.stdout.write(f"Failed to start server. Error: {exc.code.name}: {exc.message}\n")
    sys.stdout.flush()
    return FAILED_START_EXIT


def check_flags(s: ServeSettings) -> None:
    """``BuildAndStart``'s checks of the flags alone, in its order."""
    if s.port == 0 and not s.grpc_socket_path:
        raise StartupError(
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must "
            "be set."
        )
    if s.use_alts_credentials and s.ssl_config_file:
        raise StartupError(
            "Either use_alts_credentials must be false or ssl_config_file must be empty."
        )
    if not s.model_base_path and not s.model_config_file:
        raise StartupError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if s.batching_parameters_file and not s.enable_batching:
        raise StartupError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if (
        s.tensorflow_intra_op_parallelism > 0
        and s.tensorflow_inter_op_parallelism > 0
        and s.tensorflow_session_parallelism > 0
    ):
        raise StartupError(
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
        )


def report_no_effect(s: ServeSettings) -> None:
    """One line at start-up naming the given flags that change nothing here."""
    names = without_effect(ServeSettings.model_fields, s.model_fields_set)
    if names:
        log.warning(
            "flags with no effect in tfsgate (accepted for compatibility, see docs/flags.md): %s",
            ", ".join(f"--{name}" for name in names),
        )
