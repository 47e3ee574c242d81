"""Grafana dashboards shipped with monitord: the JSON, and the generator that writes it."""
