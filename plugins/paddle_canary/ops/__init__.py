"""Operating releases: Prometheus rules, Alertmanager, the Grafana dashboard."""
