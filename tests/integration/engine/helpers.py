"""Engine test harness: compile with test blocks, a recording Journal, a fake Clock."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from conv3n.compiler import Plan, compile_workflow, load_workflow
from conv3n.engine import Clock, Engine, EngineOptions, Journal
from conv3n.model import JSON, ErrorInfo, ExecutionRecord, NodeRecord
from conv3n.runtime.files import FileWorkflows
from conv3n.sdk import BlockRegistry, BlockSpec, Context, block


def registry(*blocks: BlockSpec) -> BlockRegistry:
    """The installed blocks (std/...) plus `blocks` as test/<name>."""
    found = BlockRegistry.discover()
    if blocks:
        found.add("test", blocks, origin="(test)")
    return found


def compile_doc(
    document: Mapping[str, Any], *blocks: BlockSpec, source: Path | None = None
) -> Plan:
    """A Plan of `document` (version 1 is added) with std and test blocks."""
    data = {"version": 1, **document}
    return compile_workflow(
        load_workflow(data), registry(*blocks), source=str(source) if source else None
    )


async def execute(
    document: Mapping[str, Any],
    *blocks: BlockSpec,
    input: JSON = None,
    journal: Journal | None = None,
    clock: Clock | None = None,
    secrets: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    prior: Mapping[str, NodeRecord] | None = None,
    execution_id: str | None = None,
) -> ExecutionRecord:
    """Compile and run `document` on a fresh Engine, closed afterwards."""
    plan = compile_doc(document, *blocks)
    async with Engine(
        journal=journal,
        clock=clock,
        secrets=secrets,
        options=EngineOptions(env=dict(env or {})),
        workflows=FileWorkflows(registry(*blocks)),
    ) as engine:
        return await engine.execute(plan, input, prior=prior, execution_id=execution_id)


@dataclass
class RecordingJournal:
    """Every Journal call, in order, as (event, execution_id, node_id | None, detail)."""

    events: list[tuple[str, str, str | None, Any]] = field(default_factory=list)
    finished: dict[str, ExecutionRecord] = field(default_factory=dict)

    async def execution_started(self, record: ExecutionRecord) -> None:
        self.events.append(("execution_started", record.execution_id, None, record.status))

    def node_started(
        self, execution_id: str, node_id: str, attempt: int, started_at: datetime
    ) -> None:
        self.events.append(("node_started", execution_id, node_id, attempt))

    def attempt_failed(
        self, execution_id: str, node_id: str, attempt: int, error: ErrorInfo, retry_in_s: float
    ) -> None:
        self.events.append(("attempt_failed", execution_id, node_id, (attempt, error, retry_in_s)))

    def node_finished(self, execution_id: str, node_id: str, record: NodeRecord) -> None:
        self.events.append(("node_finished", execution_id, node_id, record))

    async def execution_finished(self, record: ExecutionRecord) -> None:
        self.events.append(("execution_finished", record.execution_id, None, record.status))
        self.finished[record.execution_id] = record

    def of(self, kind: str, node_id: str | None = None) -> list[Any]:
        """The details of every event of this kind (for one node, if given)."""
        return [
            detail
            for event, _, node, detail in self.events
            if event == kind and (node_id is None or node == node_id)
        ]

    def index(self, kind: str, node_id: str) -> int:
        """Position of the first event of this kind for this node."""
        for position, (event, _, node, _) in enumerate(self.events):
            if event == kind and node == node_id:
                return position
        raise AssertionError(f"no {kind} event for {node_id}")


@dataclass
class FakeClock:
    """A Clock whose sleep returns at once (after a loop turn) and records the delays."""

    start: datetime = field(default_factory=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=sum(self.slept))

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


class Empty(BaseModel):
    """No configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Value(BaseModel):
    """A value a test block returns or inspects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: JSON = None


@block("echo")
async def echo(ctx: Context, config: Value) -> JSON:
    """Return the configured value (rendered)."""
    return config.value


@block("key")
async def key(ctx: Context, config: Empty) -> JSON:
    """Return the idempotency key."""
    return ctx.idempotency_key
