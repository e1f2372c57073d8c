"""deploy/prometheus/prometheus.yml: valid for Prometheus itself, and scraping every role."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.deploy import promtool

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "prometheus.yml"


def test_promtool_accepts_the_config() -> None:
    result = promtool.check("config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_is_scraped_where_it_serves_metrics() -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    expected = {
        # TF Serving's default prometheus_config path, on the REST port.
        "tfsgate-gateway": ("/monitoring/prometheus/metrics", "gateway", 8501),
        "tfsgate-control-plane": ("/metrics", "control-plane", 8502),
        "triton": ("/metrics", "triton", 8002),  # Triton's --metrics-port default
    }
    assert set(jobs) == set(expected)
    for name, (path, service, port) in expected.items():
        job = jobs[name]
        assert job["metrics_path"] == path
        # DNS service discovery: every replica of a scaled compose service is a target.
        (discovery,) = job["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["port"] == port
