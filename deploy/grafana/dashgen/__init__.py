"""Grafana dashboards as code: `python -m deploy.grafana.dashgen` writes deploy/grafana/dashboards."""
