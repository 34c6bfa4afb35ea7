"""`Metrics`: Prometheus counters, gauges and histograms, fed as a Journal by the engine.

One registry per process (not prometheus-client's global one), so tests and several
Runtimes stay apart. It implements the engine's Journal protocol structurally: the runtime
fans events out to storage and to this.
"""

import bisect
import collections
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from conv3n.model import ErrorInfo, ExecutionRecord, NodeRecord

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class Limits(Protocol):
    """What the gauges read from the runtime's execution limits."""

    @property
    def queued(self) -> int:
        """Executions waiting for a turn."""

    @property
    def running(self) -> int:
        """Executions holding a slot."""


class _Histogram:
    """One label set's histogram: bucket counts, sum and count, kept as plain numbers."""

    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one: +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """prometheus-client's bucket samples: (upper bound, cumulative count)."""
        running = 0
        samples = []
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            samples.append((_bound(bound), float(running)))
        return samples


def _bound(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


_NODE_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120)
_WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class Metrics:
    """Executions by status, node durations, running executions, retries, webhook latency,
    trigger fires and errors.

    The figures are plain Python numbers updated on the event loop (a webhook request updates
    seven of them; prometheus-client's own metrics take a lock for each, which cost 15 % of
    the CPU of a webhook request of workflow (a) in bench/peers/webhook_cpu.py), and a
    collector turns them into metric families when /metrics is scraped (prometheus-client,
    40-50 ms of a server's start to import, is imported then).
    """

    def __init__(self) -> None:
        self._registry: CollectorRegistry | None = None
        self.executions: collections.Counter[tuple[str, str]] = collections.Counter()
        self.running = 0
        self.retries = 0
        self.node_seconds: dict[str, _Histogram] = {}
        self.webhook_seconds: dict[str, _Histogram] = {}
        self.trigger_fires: collections.Counter[str] = collections.Counter()
        self.trigger_errors: collections.Counter[str] = collections.Counter()
        self._limits: Limits | None = None

    def trigger_fired(self, kind: str) -> None:
        """A trigger of this type started an execution."""
        self.trigger_fires[kind] += 1

    def trigger_failed(self, kind: str) -> None:
        """A trigger of this type failed to start an execution, or crashed."""
        self.trigger_errors[kind] += 1

    def webhook_answered(self, status: int, seconds: float) -> None:
        """A webhook request took `seconds` and answered `status`."""
        histogram = self.webhook_seconds.get(str(status))
        if histogram is None:
            histogram = self.webhook_seconds[str(status)] = _Histogram(_WEBHOOK_BUCKETS)
        histogram.observe(seconds)

    def watch(self, limits: Limits) -> None:
        """Read queue depth and slots in use from `limits` at every scrape."""
        self._limits = limits

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self._registry is None:
            self._registry = CollectorRegistry()
            self._registry.register(_Collector(self))
        return generate_latest(self._registry), CONTENT_TYPE_LATEST

    # --- the Journal protocol -----------------------------------------------------------------

    async def execution_started(self, record: ExecutionRecord) -> None:
        """One more running execution."""
        self.running += 1

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        """Nothing to count."""

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        """A retry."""
        self.retries += 1

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        """A node's duration."""
        if record.duration_ms is not None:
            status = record.status.value
            histogram = self.node_seconds.get(status)
            if histogram is None:
                histogram = self.node_seconds[status] = _Histogram(_NODE_BUCKETS)
            histogram.observe(record.duration_ms / 1000)

    async def execution_finished(self, record: ExecutionRecord) -> None:
        """One finished (or parked) execution by status."""
        self.running -= 1
        self.executions[record.status.value, record.mode] += 1


class _Collector:
    """The metric families of a `Metrics`, built at each scrape."""

    def __init__(self, metrics: Metrics):
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []  # families are known at collect time only; nothing to check at register

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        metrics = self._metrics
        executions = CounterMetricFamily(
            "conv3n_executions",
            "Finished executions by status and mode.",
            labels=["status", "mode"],
        )
        for (status, mode), count in sorted(metrics.executions.items()):
            executions.add_metric([status, mode], count)
        yield executions
        yield GaugeMetricFamily(
            "conv3n_executions_running", "Executions running in this process.", metrics.running
        )
        limits = metrics._limits
        yield GaugeMetricFamily(
            "conv3n_executions_queued",
            "Executions waiting for a turn (concurrency limits).",
            limits.queued if limits is not None else 0,
        )
        yield GaugeMetricFamily(
            "conv3n_execution_slots_in_use",
            "Executions holding one of the process's slots (CONV3N_MAX_CONCURRENCY).",
            limits.running if limits is not None else 0,
        )
        yield _histograms(
            "conv3n_node_duration_seconds",
            "Node durations (all attempts) by status.",
            "status",
            metrics.node_seconds,
            HistogramMetricFamily,
        )
        yield CounterMetricFamily(
            "conv3n_node_retries", "Failed attempts that were retried.", metrics.retries
        )
        yield _histograms(
            "conv3n_webhook_duration_seconds",
            "Webhook request handling time by status code.",
            "code",
            metrics.webhook_seconds,
            HistogramMetricFamily,
        )
        for name, text, counts in (
            ("conv3n_trigger_fires", "Executions started by triggers.", metrics.trigger_fires),
            (
                "conv3n_trigger_errors",
                "Trigger failures: a start that failed, a trigger that crashed or cannot start.",
                metrics.trigger_errors,
            ),
        ):
            family = CounterMetricFamily(name, text, labels=["type"])
            for kind, count in sorted(counts.items()):
                family.add_metric([kind], count)
            yield family


def _histograms(
    name: str, text: str, label: str, histograms: dict[str, _Histogram], family: Any
) -> Any:
    histogram = family(name, text, labels=[label])
    for value, data in sorted(histograms.items()):
        histogram.add_metric([value], data.cumulative(), sum_value=data.total)
    return histogram
