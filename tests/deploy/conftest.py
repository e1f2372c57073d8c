"""Fixtures for the deployment artefacts: the Docker engine and tfsgate's image, built once a session.

The image build is the slow step (about five minutes cold, seconds when the engine's layer cache
holds the dependency layer), so one session builds it once and every container test reuses it.
"""

from __future__ import annotations

import os

import pytest

from tests.support import docker

IMAGE_TAG = "tfsgate:test"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """Skip (or, with TFSGATE_REQUIRE_DOCKER=1 as in CI, fail) when no engine answers."""
    reason = docker.unavailable_reason()
    if reason is None:
        return
    if os.environ.get(docker.REQUIRE_ENV) == "1":
        pytest.fail(f"{docker.REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tfsgate_image(docker_engine: None) -> docker.BuiltImage:
    image = docker.build_image(IMAGE_TAG, base=docker.default_base())
    docker.measured(
        "docker build of tfsgate's image (layers the engine has cached are reused)", image.seconds
    )
    return image


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if docker.MEASURED:
        terminalreporter.section("deployment timings")
        for what, seconds in docker.MEASURED:
            terminalreporter.write_line(f"{seconds:8.2f} s  {what}")
