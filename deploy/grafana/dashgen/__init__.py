"""Grafana dashboards as code; `python -m deploy.grafana.dashgen` writes their JSON."""
