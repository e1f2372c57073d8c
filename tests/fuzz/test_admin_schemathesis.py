"""The admin API under schemathesis, generated from its own OpenAPI document, against a real
``tfsgate serve``: no answer is a 5xx (TF's INTERNAL/UNKNOWN map to 500), whatever the input, and
the server still answers afterwards. Bounded: a few examples per operation, no shrinking."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.support.servers import ServerProcess, free_port, start_server

pytestmark = pytest.mark.triton  # starts tritonserver

TOKEN = "fuzz-secret"
EXAMPLES_PER_OPERATION = 25
MODEL = "half_plus_two"


@pytest.fixture(scope="module")
def admin_api(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, str]]:
    home = tmp_path_factory.mktemp("admin-fuzz")
    admin_port = free_port()
    args = [
        f"--model_name={MODEL}",
        f"--model_base_path={half_plus_two}",
        f"--admin_port={admin_port}",
    ]
    env = {"TFSGATE_ADMIN_TOKEN": TOKEN, "TFSGATE_MODEL_ROOTS": str(half_plus_two.parent)}
    with start_server(home, args, env=env) as server:
        yield server, f"http://127.0.0.1:{admin_port}"


def _strategies(operation: Any) -> Any:
    """Valid and invalid cases; half of them name the served model (and its version 123), so
    mutations reach the catalog and the reconciler instead of stopping at 404."""
    known: dict[str, Any] = {}
    names = {p.name for p in operation.path_parameters}
    if "model" in names:
        known["model"] = MODEL
    if "version" in names:
        known["version"] = 123
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    if known:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters=known) for mode in modes
        ]
    return st.one_of(strategies)


def test_no_server_errors(admin_api: tuple[ServerProcess, str]) -> None:
    """Every operation of the document, cases sent with the token (so mutations run)."""
    _, url = admin_api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:

        @given(case=_strategies(operation))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: report what was found
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: Any) -> None:
            response = case.call(base_url=url, headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        call()


def test_still_answering_after_the_fuzz(admin_api: tuple[ServerProcess, str]) -> None:
    server, url = admin_api
    assert httpx.get(f"{url}/v1/admin/models", timeout=30).status_code == 200
    status = httpx.get(f"{server.rest_url}/v1/models/{MODEL}", timeout=30)
    assert status.status_code == 200
    assert server.process.poll() is None
