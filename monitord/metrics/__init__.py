"""Prometheus exposition: per-target series and monitord's own metrics."""
