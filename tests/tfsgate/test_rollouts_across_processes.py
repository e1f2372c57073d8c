"""The rollout guard and the shadow summary across processes: a ``tfsgate control-plane`` with
no front door and two ``tfsgate gateway`` processes serving every request. The control plane
sees traffic only through what the gateways report to the catalog, so a canary whose runner
raises is rolled back on the gateways' figures, and the shadow summary adds up both gateways'
comparisons."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.models import model_config, write_models
from tests.support.roles import RoleProcess, predict_status, running, wait_for

pytestmark = [pytest.mark.triton, pytest.mark.process]
MODEL = "ro"
THRESHOLDS = {"window_seconds": 30, "min_requests": 10, "max_error_rate_increase": 0.05}


def predict(gateway: RoleProcess, client: httpx.Client, x: float = 1.0) -> httpx.Response:
    return client.post(f"{gateway.rest_url}/v1/models/{MODEL}:predict", json={"instances": [x]})


def test_guard_and_shadow_summary_see_every_gateway(tmp_path: Path) -> None:
    base = tmp_path / "models" / MODEL
    write_models(
        ("half_plus_two", base / "1", {}),
        ("failing", base / "2", {"fail_above": 0.0}),  # raises for every positive x
        ("half_plus_three", base / "3", {}),
    )
    config = tmp_path / "models.config"
    config.write_text(model_config((MODEL, base)))
    home = tmp_path / "control"
    database = f"--database_url=sqlite:///{home / 'catalog.db'}"
    control_args = [database, f"--model_config_file={config}"]
    control_args.append(f"--model_repository={home / 'model_repository'}")
    with running("control-plane", home, control_args) as control:
        api = f"{control.admin_url}/models/{MODEL}"
        wait_for(control, lambda: httpx.get(api, timeout=2).status_code == 200, "admin API")
        with (
            running("gateway", tmp_path / "gw-a", [database]) as first,
            running("gateway", tmp_path / "gw-b", [database]) as second,
            httpx.Client(timeout=30) as client,
        ):
            gateways = (first, second)
            for gateway in gateways:
                wait_for(gateway, lambda g=gateway: predict_status(g, MODEL) == 200, "serving")
            assert client.post(f"{api}/promote", json={"version": 1}).status_code == 200
            assert client.put(f"{api}/thresholds", json=THRESHOLDS).status_code == 200
            traffic = {"weights": {"stable": 100}}
            assert client.put(f"{api}/traffic", json=traffic).status_code == 200

            # Shadow: 20 requests through each gateway, one summary of 40.
            shadow = {"version": 3, "percent": 100}
            assert client.put(f"{api}/shadow", json=shadow).status_code == 200
            time.sleep(1.5)  # the table reaches both gateways (feed: well within a second)
            for gateway in gateways:
                for x in range(20):
                    answer = predict(gateway, client, float(x))
                    assert answer.json() == {"predictions": [0.5 * x + 2]}, answer.text
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                comparisons = client.get(f"{api}/shadow").json()["comparisons"]
                if comparisons and comparisons[0]["requests"] >= 40:
                    break
                time.sleep(0.2)
            (summary,) = comparisons
            assert (summary["primary_version"], summary["shadow_version"]) == (1, 3)
            assert summary["requests"] == 40 and summary["errors"] == 0
            assert summary["max_abs_diff"] == pytest.approx(1.0)
            assert client.delete(f"{api}/shadow").status_code == 200

            # Guard: a raising canary, traffic only through the gateways.
            outcomes: Counter[tuple[int, int]] = Counter()
            stop = threading.Event()

            def load(index: int) -> None:
                with httpx.Client(timeout=30) as own:
                    while not stop.is_set():
                        outcomes[(index, predict(gateways[index], own).status_code)] += 1

            threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(2)
                rollout = {"version": 2, "steps": [30, 100], "interval_seconds": 60}
                assert client.post(f"{api}/rollout", json=rollout).status_code == 200
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    status = client.get(f"{api}/rollout").json()
                    if status["rollout"]["state"] != "running":
                        break
                    time.sleep(0.3)
            finally:
                stop.set()
                for thread in threads:
                    thread.join()
            assert status["rollout"]["state"] == "rolled_back", status
            assert "error rate" in status["rollout"]["reason"]
            events = client.get(f"{control.admin_url}/events?model={MODEL}").json()["events"]
            (rolled,) = [e for e in events if e["action"] == "rollout_rollback"]
            figures = rolled["after"]["figures"]
            assert figures["candidate"]["errors"] >= THRESHOLDS["min_requests"] // 2
            assert figures["baseline"]["requests"] > 0 and figures["baseline"]["errors"] == 0
            weights = client.get(f"{api}/traffic").json()["weights"]
            assert weights["2"] == 0.0
            # Both gateways served the stable and the failing canary; the guard counted them all.
            served = sum(n for (_, code), n in outcomes.items())
            assert all(outcomes[(i, 200)] > 0 for i in range(2)), outcomes
            assert figures["candidate"]["requests"] + figures["baseline"]["requests"] <= served
