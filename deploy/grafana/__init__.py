"""Grafana dashboards as code: ``generate.py`` writes them."""
