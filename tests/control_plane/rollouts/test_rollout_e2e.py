"""Guarded rollouts over a real ``tfsgate serve``: a canary whose runner raises and one made slow
are rolled back automatically, with an audit event carrying the figures, while stable serves; a
healthy canary walks its steps and is promoted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.support.admin_http import admin, admin_cli, serve_with_admin
from tests.support.load import Load
from tests.support.models import model_config, write_models
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton
THRESHOLDS = {
    "window_seconds": 30,
    "min_requests": 10,
    "max_error_rate_increase": 0.05,
    "max_p99_ratio": 2.0,
    "min_p99_increase_seconds": 0.05,
    "min_latency_requests": 30,
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("rollouts")
    base = root / "models" / "ro"
    write_models(
        ("half_plus_two", base / "1", {}),
        ("failing", base / "2", {"fail_above": 0.0}),  # raises for every positive x
        ("slow", base / "3", {"sleep_seconds": 0.3}),
        ("half_plus_two", base / "4", {}),  # a healthy candidate
    )
    with serve_with_admin(root, model_config(("ro", base)), "ro") as (server, api):
        admin("POST", f"{api}/models/ro/promote", {"version": 1})
        admin("PUT", f"{api}/models/ro/thresholds", THRESHOLDS)
        yield server, api


class Outcomes(Load):
    """Clients predicting continuously: unnamed requests (the split) and ``stable`` ones."""

    def __init__(self, server: ServerProcess, clients: int = 4) -> None:
        self.outcomes: Counter[tuple[str, int]] = Counter()

        def predict(client: httpx.Client, index: int) -> None:
            path = "ro/labels/stable" if index == 0 else "ro"
            kind = "stable" if index == 0 else "split"
            response = client.post(
                f"{server.rest_url}/v1/models/{path}:predict", json={"instances": [1.0]}
            )
            self.outcomes[(kind, response.status_code)] += 1

        super().__init__(predict, threads=clients)


def wait_for_state(api: str, wanted: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = admin("GET", f"{api}/models/ro/rollout").json()
        if status["rollout"]["state"] == wanted:
            return status
        time.sleep(0.3)
    pytest.fail(f"rollout not {wanted}: {status}")


def events(api: str, action: str) -> list[dict[str, object]]:
    found = admin("GET", f"{api}/events?model=ro").json()["events"]
    return [e for e in found if e["action"] == action]


@pytest.mark.parametrize(
    ("candidate", "breach"), [(2, "error rate"), (3, "p99")], ids=["raising", "slow"]
)
def test_bad_canary_is_rolled_back_while_stable_serves(
    served: tuple[ServerProcess, str], candidate: int, breach: str
) -> None:
    server, api = served
    before = len(events(api, "rollout_rollback"))
    with Outcomes(server) as load:
        time.sleep(2)  # the baseline builds a window first
        body = {"version": candidate, "steps": [20, 50, 100], "interval_seconds": 30}
        admin("POST", f"{api}/models/ro/rollout", body)
        status = wait_for_state(api, "rolled_back")
        time.sleep(1)
    assert breach in str(status["rollout"]["reason"])  # type: ignore[index]
    assert status["rollout"]["weight"] == 0  # type: ignore[index]
    weights = admin("GET", f"{api}/models/ro/traffic").json()["weights"]
    assert weights[str(candidate)] == 0.0 and weights["1"] == 100.0
    rolled = events(api, "rollout_rollback")
    assert len(rolled) == before + 1
    figures = rolled[-1]["after"]["figures"]  # type: ignore[index]
    assert breach in figures["reason"]
    assert figures["candidate"]["requests"] >= THRESHOLDS["min_requests"]
    assert figures["baseline"]["requests"] > 0
    assert load.outcomes[("stable", 200)] > 0
    assert {k for k in load.outcomes if k[0] == "stable"} == {("stable", 200)}


def test_healthy_canary_walks_its_steps_and_is_promoted(served: tuple[ServerProcess, str]) -> None:
    server, api = served
    with Outcomes(server) as load:
        body = {"version": 4, "steps": [50, 100], "interval_seconds": 2}
        admin("POST", f"{api}/models/ro/rollout", body)
        wait_for_state(api, "completed", timeout=90)
    assert {k for k in load.outcomes} <= {("stable", 200), ("split", 200)}
    labels = admin("GET", f"{api}/models/ro/labels").json()["labels"]
    assert labels["stable"] == 4 and labels["previous_stable"] == 1
    assert [e["after"]["weight"] for e in events(api, "rollout_step")][-1] == 100  # type: ignore[index]
    assert events(api, "rollout_complete")
    shown = admin_cli(api, "rollout", "status", "ro")
    assert "completed" in shown and "candidate" in shown


def test_20_promote_rollback_cycles_with_8_clients_fail_nothing(
    served: tuple[ServerProcess, str],
) -> None:
    server, api = served
    admin("PUT", f"{api}/models/ro/traffic", {"weights": {"stable": 100}})
    with Outcomes(server, clients=8) as load:
        time.sleep(1)
        for _ in range(20):
            stable = admin("GET", f"{api}/models/ro/labels").json()["labels"]["stable"]
            other = 1 if stable != 1 else 4
            admin("POST", f"{api}/models/ro/promote", {"version": other})
            admin("POST", f"{api}/models/ro/rollback", {})
        time.sleep(1)
    codes = Counter(code for (_, code), n in load.outcomes.items() for _ in range(n))
    assert set(codes) == {200}, codes
    assert sum(codes.values()) > 100


def test_requests_in_flight_finish_on_the_version_they_started_on(
    served: tuple[ServerProcess, str],
) -> None:
    """Requests to the slow version (0.3 s each) are in flight when the split moves to version
    1: they answer 200 from version 3, and the next requests go to version 1."""
    server, api = served
    admin("PUT", f"{api}/models/ro/traffic", {"weights": {"3": 100}})
    url = f"{server.rest_url}/v1/models/ro:predict"
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(httpx.post(url, json={"instances": [1.0]}, timeout=30))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.15)  # they are waiting on version 3 (a slow thread start may miss it)
    admin("PUT", f"{api}/models/ro/traffic", {"weights": {"1": 100}})
    after = httpx.post(url, json={"instances": [1.0]}, timeout=30)
    for thread in threads:
        thread.join()
    admin("PUT", f"{api}/models/ro/traffic", {"weights": {"stable": 100}})
    assert {a.status_code for a in answers} == {200}
    # The ones in flight at the change answered from the version they were sent to.
    assert "3" in {a.headers["x-model-version"] for a in answers}
    assert (after.status_code, after.headers["x-model-version"]) == (200, "1")
