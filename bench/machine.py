"""The machine a benchmark ran on: CPU, memory, OS, commit and the versions that matter."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import httpx

from bench.procs import ROOT, Serve


def describe(serve: Serve | None) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {
        name: importlib.metadata.version(name)
        for name in ("tensorflow", "grpcio", "uvicorn", "orjson", "numpy", "tritonclient")
    }
    versions["python"] = platform.python_version()
    versions["wrk"] = _first_line(["wrk", "-v"])
    versions["h2load"] = _first_line(["h2load", "--version"])
    if serve is not None:
        server = httpx.get(f"{serve.endpoints['http_url']}/v2", timeout=10).json()
        versions["tritonserver"] = server.get("version", "?")
    commit = _first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "commit": commit,
        "versions": versions,
    }


def _first_line(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()
