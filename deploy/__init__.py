"""Deployment assets; ``deploy.grafana`` is code (the dashboards' generator)."""
