"""Observability plumbing: Prometheus metrics, structured logs, health."""
