"""`Metrics`: plain counters on the event loop, exposed in Prometheus's text format at scrape."""

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from conv3n.model import ExecutionRecord, ExecutionStatus, NodeRecord, NodeStatus
from conv3n.observability import Metrics


class FakeLimits:
    queued = 3
    running = 2


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _record(status: ExecutionStatus, mode: str) -> ExecutionRecord:
    return ExecutionRecord(execution_id="e", workflow_id="w", status=status, mode=mode)


async def test_counters_gauges_and_histograms_are_exposed_with_their_labels() -> None:
    metrics = Metrics()
    metrics.watch(FakeLimits())
    for status, mode in [("success", "webhook"), ("success", "webhook"), ("error", "api")]:
        await metrics.execution_started(_record(ExecutionStatus.RUNNING, mode))
        await metrics.execution_finished(_record(ExecutionStatus(status), mode))
    await metrics.execution_started(_record(ExecutionStatus.RUNNING, "cron"))
    now = datetime.now(UTC)
    for ms in (0.2, 0.7, 0.7, 40.0, 999_999.0):
        record = NodeRecord(status=NodeStatus.SUCCESS, started_at=now, duration_ms=ms)
        metrics.node_finished("e", "n", record)
    metrics.node_finished("e", "n", NodeRecord(status=NodeStatus.SKIPPED))  # no duration
    metrics.webhook_answered(200, 0.001)  # on a bound: counted in that bucket
    metrics.webhook_answered(404, 0.3)
    metrics.trigger_fired("webhook")
    metrics.trigger_failed("file")
    metrics.trigger_failed("file")
    metrics.attempt_failed("e", "n", 1, None, 1.0)  # type: ignore[arg-type]

    samples = _samples(metrics)
    executions = "conv3n_executions_total"
    assert samples[executions, (("mode", "webhook"), ("status", "success"))] == 2
    assert samples[executions, (("mode", "api"), ("status", "error"))] == 1
    assert samples["conv3n_executions_running", ()] == 1
    assert samples["conv3n_executions_queued", ()] == 3
    assert samples["conv3n_execution_slots_in_use", ()] == 2
    node = "conv3n_node_duration_seconds"
    success = (("status", "success"),)
    assert samples[f"{node}_count", success] == 5
    assert abs(samples[f"{node}_sum", success] - 1000.0406) < 1e-6
    buckets = {
        le: samples[f"{node}_bucket", (("le", le), ("status", "success"))]
        for le in ("0.0005", "0.001", "0.05", "120.0", "+Inf")
    }
    assert buckets == {"0.0005": 1, "0.001": 3, "0.05": 4, "120.0": 4, "+Inf": 5}
    assert (f"{node}_count", (("status", "skipped"),)) not in samples
    webhook = "conv3n_webhook_duration_seconds_bucket"
    assert samples[webhook, (("code", "200"), ("le", "0.001"))] == 1
    assert samples[webhook, (("code", "404"), ("le", "0.25"))] == 0
    assert samples[webhook, (("code", "404"), ("le", "0.5"))] == 1
    assert samples["conv3n_trigger_fires_total", (("type", "webhook"),)] == 1
    assert samples["conv3n_trigger_errors_total", (("type", "file"),)] == 2
    assert samples["conv3n_node_retries_total", ()] == 1


def test_an_unused_metrics_object_exposes_zeroes_and_empty_families() -> None:
    samples = _samples(Metrics())
    assert samples["conv3n_executions_running", ()] == 0
    assert samples["conv3n_executions_queued", ()] == 0
    assert samples["conv3n_node_retries_total", ()] == 0
    assert not any(name == "conv3n_executions_total" for name, _ in samples)


def test_two_metrics_objects_keep_their_own_figures() -> None:
    one, other = Metrics(), Metrics()
    one.trigger_fired("cron")
    assert _samples(one)["conv3n_trigger_fires_total", (("type", "cron"),)] == 1
    assert ("conv3n_trigger_fires_total", (("type", "cron"),)) not in _samples(other)
