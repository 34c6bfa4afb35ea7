"""`Metrics`: Prometheus counters and histograms, fed as a Journal by the engine.

One registry per process (not prometheus-client's global one), so tests and several
Runtimes stay apart. It implements the engine's Journal protocol structurally: the runtime
fans events out to storage and to this.
"""

from datetime import datetime
from typing import Any, Protocol

from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord


class Limits(Protocol):
    """What the gauges read from the runtime's execution limits."""

    @property
    def queued(self) -> int:
        """Executions waiting for a turn."""

    @property
    def running(self) -> int:
        """Executions holding a slot."""


class _Children:
    """A labelled metric's children by label values, each looked up in prometheus-client once
    (its `labels()` takes a lock and checks its arguments on every call: a few µs each, four
    times per webhook call). The label values are few: statuses, modes, trigger types, codes."""

    __slots__ = ("_known", "_metric")

    def __init__(self, metric: Any):
        self._metric = metric
        self._known: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._known.get(values)
        if child is None:
            child = self._known[values] = self._metric.labels(*values)
        return child


_NODE_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120)
_WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """Executions by status, node durations, running executions, retries, webhook latency,
    trigger fires and errors."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.executions = Counter(
            "conv3n_executions",
            "Finished executions by status and mode.",
            ["status", "mode"],
            registry=self.registry,
        )
        self.running = Gauge(
            "conv3n_executions_running",
            "Executions running in this process.",
            registry=self.registry,
        )
        self.queued = Gauge(
            "conv3n_executions_queued",
            "Executions waiting for a turn (concurrency limits).",
            registry=self.registry,
        )
        self.slots = Gauge(
            "conv3n_execution_slots_in_use",
            "Executions holding one of the process's slots (CONV3N_MAX_CONCURRENCY).",
            registry=self.registry,
        )
        self.node_seconds = Histogram(
            "conv3n_node_duration_seconds",
            "Node durations (all attempts) by status.",
            ["status"],
            buckets=_NODE_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "conv3n_node_retries", "Failed attempts that were retried.", registry=self.registry
        )
        self.webhook_seconds = Histogram(
            "conv3n_webhook_duration_seconds",
            "Webhook request handling time by status code.",
            ["code"],
            buckets=_WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self.trigger_fires = Counter(
            "conv3n_trigger_fires",
            "Executions started by triggers.",
            ["type"],
            registry=self.registry,
        )
        self.trigger_errors = Counter(
            "conv3n_trigger_errors",
            "Trigger failures: a start that failed, a trigger that crashed or cannot start.",
            ["type"],
            registry=self.registry,
        )

        self._executions = _Children(self.executions)
        self._node_seconds = _Children(self.node_seconds)
        self._webhook_seconds = _Children(self.webhook_seconds)
        self._trigger_fires = _Children(self.trigger_fires)
        self._trigger_errors = _Children(self.trigger_errors)

    def trigger_fired(self, kind: str) -> None:
        """A trigger of this type started an execution."""
        self._trigger_fires(kind).inc()

    def trigger_failed(self, kind: str) -> None:
        """A trigger of this type failed to start an execution, or crashed."""
        self._trigger_errors(kind).inc()

    def webhook_answered(self, status: int, seconds: float) -> None:
        """A webhook request took `seconds` and answered `status`."""
        self._webhook_seconds(str(status)).observe(seconds)

    def watch(self, limits: Limits) -> None:
        """Read queue depth and slots in use from `limits` at every scrape."""
        self.queued.set_function(lambda: limits.queued)
        self.slots.set_function(lambda: limits.running)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # --- the Journal protocol -----------------------------------------------------------------

    async def execution_started(self, record: ExecutionRecord) -> None:
        """One more running execution."""
        self.running.inc()

    async def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Nothing to count."""

    async def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """A retry."""
        self.retries.inc()

    async def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """A node's duration."""
        if record.duration_ms is not None:
            self._node_seconds(record.status.value).observe(record.duration_ms / 1000)

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """One finished (or parked) execution by status."""
        self.running.dec()
        self._executions(record.status.value, record.mode).inc()
