"""Metrics (Prometheus) for the server; logs arrive with structlog (issue 4)."""

from conv3n.observability.metrics import Metrics

__all__ = ["Metrics"]
