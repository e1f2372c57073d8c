"""Feedback over a real ``tfsgate serve``: a classifier's two versions, one more accurate than
the other, each get their own accuracy and AUC from feedback, matching an offline computation
with scikit-learn on the same data. Version 2 shadows version 1, so both answer every request
and feedback on one request id scores both."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn import metrics as skm

from tests.support.admin_http import admin, admin_cli, serve_with_admin
from tests.support.models import model_config, write_models
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.triton
WEIGHTS = {1: (4.0, 0.0), 2: (1.0, 0.8)}  # version 2 is biased: worse accuracy


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    root = tmp_path_factory.mktemp("feedback")
    base = root / "models" / "clf"
    write_models(
        *(
            ("binary_classifier", base / str(v), {"weight": w, "bias": b})
            for v, (w, b) in WEIGHTS.items()
        )
    )
    with serve_with_admin(root, model_config(("clf", base)), "clf") as (server, api):
        yield server, api


def test_each_version_gets_its_own_accuracy_and_auc(
    served: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, api = served
    admin("POST", f"{api}/models/clf/promote", {"version": 1})
    admin("PUT", f"{api}/models/clf/traffic", {"weights": {"stable": 100}})
    admin("PUT", f"{api}/models/clf/shadow", {"version": 2, "percent": 100})
    rng = np.random.default_rng(3)
    xs = rng.normal(size=300).astype(np.float32)
    truth = (xs + rng.normal(scale=0.5, size=300) > 0).astype(int)
    ids = []
    with httpx.Client(timeout=30) as client:
        for i, x in enumerate(xs):
            response = client.post(
                f"{server.rest_url}/v1/models/clf:predict",
                json={"instances": [[float(x)]]},
                headers={"X-Request-Id": f"req-{i}"},
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-model-version"] == "1"
            ids.append(response.headers["x-request-id"])
    _wait_for_shadows(api, len(xs))

    url = f"{server.rest_url}/v1/models/clf:feedback"
    bad = httpx.post(url, json={"feedback": [{"request_id": "req-0"}]})
    assert bad.status_code == 400 and "value" in bad.json()["error"]
    half = len(ids) // 2
    first = [
        {"request_id": i, "value": int(t)} for i, t in zip(ids[:half], truth[:half], strict=True)
    ]
    answer = httpx.post(url, json={"feedback": [*first, {"request_id": "never-seen", "value": 1}]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"matched": half, "unmatched": 1}
    lines = [
        json.dumps({"request_id": i, "value": int(t)})
        for i, t in zip(ids[half:], truth[half:], strict=True)
    ]
    jsonl = tmp_path / "feedback.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    shown = admin_cli(api, "feedback", "clf", str(jsonl))
    assert f"{len(ids) - half} matched, 0 unmatched" in shown

    quality = admin("GET", f"{api}/models/clf/quality", None).json()["versions"]
    for version, (weight, bias) in WEIGHTS.items():
        offline = 1 / (1 + np.exp(-(weight * xs.astype(np.float64) + bias)))
        online = quality[str(version)]
        assert online["feedback"] == len(xs)
        assert online["metrics"]["accuracy"] == pytest.approx(
            skm.accuracy_score(truth, offline >= 0.5)
        )
        assert online["metrics"]["auc_roc"] == pytest.approx(
            skm.roc_auc_score(truth, offline), abs=1e-3
        )
        assert online["metrics"]["log_loss"] == pytest.approx(
            skm.log_loss(truth, offline), rel=1e-4
        )
    assert quality["1"]["metrics"]["accuracy"] > quality["2"]["metrics"]["accuracy"]
    metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics").text
    assert 'tfsgate_quality{metric="accuracy",model="clf",version="1"}' in metrics


def _wait_for_shadows(api: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        comparisons = admin("GET", f"{api}/models/clf/shadow").json()["comparisons"]
        if comparisons and comparisons[0]["requests"] >= count:
            return
        time.sleep(0.2)
    pytest.fail("shadow copies did not all finish")
