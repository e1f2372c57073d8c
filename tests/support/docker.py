"""The Docker engine for container tests: is one reachable, build tfsgate's image, run containers.

Tests that need the engine are marked ``docker`` and skip with the reason when none answers; with
``TFSGATE_REQUIRE_DOCKER=1`` (CI's ``.ci/run`` sets it after ``.ci/prepare-docker``) they fail
instead, so a broken engine cannot pass CI by skipping.

Builds use ``--network host`` (on this machine the engine runs with ``--bridge=none``, so the default
network has no route out) and reach the package index the way this host's pip does: its
configuration's http(s) index URLs, trusted hosts, timeout and, when it names a certificate bundle,
the image's own system bundle (the prepared base image carries this host's CA certificates).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Made by .ci/prepare-docker with debootstrap: no image registry is reachable here.
LOCAL_BASE = "local/debian:bookworm"
IMAGE_CERT_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
REQUIRE_ENV = "TFSGATE_REQUIRE_DOCKER"
# What the container tests measured (what, seconds), printed at the end of the session
# (tests/deploy/conftest.py): build and start-up times, a change's delay, Triton's recovery.
MEASURED: list[tuple[str, float]] = []


def measured(what: str, seconds: float) -> None:
    MEASURED.append((what, seconds))


def docker(
    *args: str, timeout: float = 60.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def unavailable_reason() -> str | None:
    """Why no engine can be used, or None when ``docker info`` answers."""
    if shutil.which("docker") is None:
        return "no docker client on PATH (.ci/prepare-docker installs the engine)"
    try:
        result = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "the docker engine did not answer `docker info` within 20 s"
    if result.returncode != 0:
        return f"no docker engine reachable: {result.stderr.strip()[:300]}"
    return None


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def default_base() -> str | None:
    """The base image to build on: the prepared local Debian when present, else the Dockerfile's."""
    chosen = os.environ.get("TFSGATE_DOCKER_BASE")
    if chosen:
        return chosen
    return LOCAL_BASE if image_exists(LOCAL_BASE) else None


def host_pip_config() -> dict[str, str]:
    """This host's effective pip settings (files and PIP_* environment), as ``pip config list``."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    files: dict[str, str] = {}
    environment: dict[str, str] = {}
    for line in result.stdout.splitlines():
        # "global.cert='/etc/...'" (a file) or ":env:.default-timeout='180'" (PIP_* variables).
        key, _, value = line.partition("=")
        target = environment if key.startswith(":env:") else files
        target[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return {**files, **environment}  # pip's precedence: the environment over files


def pip_build_args(settings: dict[str, str] | None = None) -> dict[str, str]:
    """Build arguments that make pip inside the build reach the index as this host's pip does.

    Local paths (find-links, file:// indexes, constraint files) are not in the build context and
    are left out; a certificate setting becomes the image's system bundle, never the host's file.
    """
    settings = host_pip_config() if settings is None else settings
    args: dict[str, str] = {}

    def remote(urls: str) -> str:
        return " ".join(u for u in urls.split() if u.startswith(("http://", "https://")))

    if remote(settings.get("index-url", "")):
        args["PIP_INDEX_URL"] = remote(settings["index-url"])
    if remote(settings.get("extra-index-url", "")):
        args["PIP_EXTRA_INDEX_URL"] = remote(settings["extra-index-url"])
    if settings.get("trusted-host"):
        args["PIP_TRUSTED_HOST"] = settings["trusted-host"]
    timeout = settings.get("default-timeout") or settings.get("timeout")
    if timeout:
        args["PIP_DEFAULT_TIMEOUT"] = timeout
    if settings.get("cert"):
        args["PIP_CERT"] = IMAGE_CERT_BUNDLE
    return args


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    log: str


def build_image(tag: str, base: str | None = None, timeout: float = 1800.0) -> BuiltImage:
    """``docker build`` the repository's Dockerfile; layers cached by the engine between runs."""
    command = ["build", "--network", "host", "-t", tag]
    if base:
        command += ["--build-arg", f"BASE={base}"]
    for key, value in pip_build_args().items():
        command += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    result = docker(*command, str(REPO), timeout=timeout, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"docker build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        )
    return BuiltImage(tag, seconds, result.stdout)


@dataclass
class Container:
    name: str

    def running(self) -> bool:
        result = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return result.stdout.strip() == "true"

    def logs(self) -> str:
        result = docker("logs", "--tail", "200", self.name, check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        docker("rm", "-f", "-v", self.name, check=False)


def run_container(name: str, image: str, run_args: list[str], command: list[str]) -> Container:
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--label", "tfsgate.test=1", *run_args, image, *command)
    return Container(name)


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) when present, else Debian's ``docker-compose`` (v1)."""
    if shutil.which("docker") and docker("compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    return [found] if found else None


@dataclass
class ComposeProject:
    """One compose project (files relative to the repository root) with its own environment."""

    name: str
    files: list[str]
    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 600.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = compose_command()
        if command is None:
            raise RuntimeError("neither `docker compose` nor docker-compose is installed")
        files = [part for file in self.files for part in ("-f", file)]
        result = subprocess.run(
            [*command, "-p", self.name, *files, *args],
            cwd=REPO,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def container(self, service: str) -> str:
        ids = self.run("ps", "-q", service).stdout.split()
        if len(ids) != 1:
            raise RuntimeError(f"{service}: expected one container, found {ids}")
        return ids[0]

    def health(self, service: str) -> str:
        state = docker(
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Health.Status}}",
            self.container(service),
        )
        return state.stdout.strip()

    def wait_healthy(self, services: list[str], timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if self.health(s) != "running healthy"]
            time.sleep(1)
        if pending:
            logs = self.run("logs", "--tail", "60", *pending, check=False)
            raise RuntimeError(f"not healthy after {timeout:.0f}s: {pending}\n{logs.stdout}")
