"""What the benchmarks share: a fresh half_plus_two SavedModel and a real ``tfsgate serve`` on it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.servers import ServerProcess, free_port, serve_command  # noqa: E402


def write_half_plus_two() -> Path:
    """The example model, version 1, in a fresh temp dir; returns its base path."""
    base = Path(tempfile.mkdtemp(prefix="tfsgate-bench-")) / "half_plus_two"
    subprocess.run(
        [sys.executable, "-m", "tfsgate.examples", str(base), "--version", "1"],
        check=True,
        capture_output=True,
    )
    return base


def spawn_serve(base: Path) -> ServerProcess:
    """Start ``tfsgate serve`` on ``base`` (not waited for)."""
    work = base.parent
    home, grpc_port, rest_port = work / "home", free_port(), free_port()
    home.mkdir()
    args = ["--model_name=half_plus_two", f"--model_base_path={base}"]
    command = serve_command(home, args, grpc_port, rest_port)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ServerProcess(process, home, grpc_port, rest_port, home / "serve.log")
