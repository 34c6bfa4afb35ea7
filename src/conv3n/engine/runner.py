"""`Run`: one execution of a Plan (or one loop-body item), from start nodes to the record.

Called by `Engine.execute` and, for loop bodies, by `NodeContext.run_subgraph`. Decisions come
from `frontier` (which nodes run or skip) and `retry` (delays); this module carries them out in
one TaskGroup, writes every node record to the Journal before successors start, and builds
the execution record of SPEC §6.
"""

import asyncio
import contextlib
import functools
import time
from collections import ChainMap
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conv3n import expr
from conv3n.compiler import Plan, PlanNode
from conv3n.engine import attempt as attempts
from conv3n.engine import context, frontier, retry, tasks, views
from conv3n.errors import BlockError
from conv3n.model import (
    JSON,
    ErrorInfo,
    ExecutionRecord,
    ExecutionStatus,
    NodeRecord,
    NodeStatus,
    WebhookResponse,
)

if TYPE_CHECKING:
    from conv3n.engine.engine import Engine

_NO_PORTS: frozenset[str] = frozenset()
_NO_DEADLINE = contextlib.nullcontext()
_YIELD_EVERY = 64
"""Inline node runs give the event loop a turn this often, so a long chain of instant blocks
cannot starve other executions."""


class _Abort(Exception):
    """A node failed with `on_error: fail`: stop the whole execution."""


class Run:
    """The state of one execution while it runs.

    Attributes:
        status, records, ports: per node index.
        views: `$node` as expressions see it (id -> {data, status, error, ...}).
    """

    # Slotted: one Run is built per loop item, and attribute access is on every node's path.
    __slots__ = (
        "_cancel_delivered",
        "_cancel_requested",
        "_finished",
        "_group",
        "_slots",
        "_t0",
        "_task",
        "children",
        "depth",
        "effects",
        "engine",
        "error",
        "execution_id",
        "execution_view",
        "finish_order",
        "finished",
        "frontier",
        "input",
        "journaled",
        "key_suffix",
        "mode",
        "own_views",
        "parent",
        "parked_until",
        "plan",
        "ports",
        "prior",
        "records",
        "response",
        "scope",
        "started_at",
        "status",
        "vars",
        "views",
    )

    def __init__(
        self,
        engine: "Engine",
        plan: Plan,
        *,
        execution_id: str,
        input: JSON,
        mode: str = "manual",
        depth: int = 0,
        prior: Mapping[str, NodeRecord] | None = None,
        parent: "Run | None" = None,
        item: JSON = None,
        index: int | None = None,
        journaled: bool = True,
    ):
        self.engine = engine
        self.plan = plan
        self.execution_id = execution_id
        self.input = input
        self.mode = mode
        self.depth = depth
        self.prior = prior or {}
        self.parent = parent
        self.journaled = journaled
        self.finished = False
        self.parked_until: datetime | None = None
        """The earliest time a parked node (a long std/delay) waits for."""
        self.effects: dict[int, dict[str, JSON]] | None = None
        """Side effects of running nodes by index (`vars`, `response`), kept in their records."""
        self.children: set[Run] | None = None
        """Sub-workflow executions this one waits for (on the top Run, not on loop bodies)."""
        size = len(plan.nodes)
        self.status: list[NodeStatus] = [NodeStatus.PENDING] * size
        self.records: list[NodeRecord | None] = [None] * size
        self.ports: list[frozenset[str]] = [_NO_PORTS] * size
        self.finish_order: list[int] = [0] * size
        self._finished = 0
        self.frontier = frontier.Frontier.of(
            tuple(n.successors for n in plan.nodes), (n.predecessors for n in plan.nodes)
        )
        self.response: WebhookResponse | None = None
        self.error: ErrorInfo | None = None
        self.started_at: datetime | None = None
        self._group: asyncio.TaskGroup | None = None
        self._cancel_requested = False
        self._cancel_delivered = False
        self._task: asyncio.Task[Any] | None = None
        """The task running the graph, set only while it does (what `cancel()` interrupts)."""
        self._t0 = 0.0
        self._slots: asyncio.Semaphore | None = None
        own_views = views.NodeViews()
        self.own_views = own_views
        if parent is None:
            self.vars: dict[str, JSON] = {}
            self.key_suffix = ""
            self.views: Mapping[str, Any] = own_views
            self.execution_view: dict[str, JSON] = {}
        else:
            self.vars = parent.vars
            self.key_suffix = f"{parent.key_suffix}:{index}"
            self.views = ChainMap(own_views, parent.views)  # type: ignore[arg-type]
            self.execution_view = parent.execution_view
        self.scope: expr.Scope = expr.Scope(
            input=parent.scope.input if parent else input,
            node=self.views,
            vars=self.vars,
            secrets=engine.secrets,
            env=engine.env,
            execution=self.execution_view,
            item=item if parent else None,
            index=index if parent else None,
        )

    # --- public ----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the execution: running nodes are cancelled, the record says `cancelled`.

        Only the graph is interrupted: a request that comes before the first node or after
        the last one never turns a journal call into a CancelledError for the caller.
        """
        if self._cancel_requested:
            return
        self._cancel_requested = True
        if self._task is not None:
            self._cancel_delivered = True
            self._task.cancel()

    async def execute(self) -> ExecutionRecord:
        """Run to the end and return the execution record (never raises for node failures).

        A cancellation that did not come from `cancel()` (e.g. a server shutting down)
        propagates, leaving unfinished nodes unrecorded so the execution can resume.
        """
        engine = self.engine
        self.started_at = engine.clock.now()
        self._t0 = time.perf_counter()
        self.execution_view.update(
            id=self.execution_id,
            workflow_id=self.plan.workflow_id,
            started_at=self.started_at.isoformat(),
            mode=self.mode,
        )
        if engine.options.public_url:
            base = engine.options.public_url.rstrip("/")
            self.execution_view["resume_url"] = f"{base}/api/executions/{self.execution_id}/resume"
        settings = self.plan.workflow.settings
        if settings.max_parallel_nodes is not None:
            self._slots = asyncio.Semaphore(settings.max_parallel_nodes)
        if self.journaled:
            await engine.journal.execution_started(self._record(ExecutionStatus.RUNNING, None))
        status = ExecutionStatus.SUCCESS
        timeout_ms = settings.timeout_ms
        task = asyncio.current_task()
        # no Timeout object without a deadline: it costs ~2 µs an execution for nothing
        deadline = asyncio.timeout(timeout_ms / 1000) if timeout_ms else _NO_DEADLINE
        try:
            async with deadline:
                if not self._cancel_requested:
                    self._task = task
                    try:
                        await self._run_graph()
                    finally:
                        self._task = None
        except _Abort:
            status = ExecutionStatus.ERROR
        except TimeoutError:
            status = ExecutionStatus.ERROR
            self.error = ErrorInfo(
                type="timeout",
                message=f"the execution did not finish within {timeout_ms} ms",
                details={"timeout_ms": timeout_ms},
            )
        except asyncio.CancelledError:
            if not self._cancel_delivered:
                raise
        if self._cancel_delivered and task is not None:
            # The CancelledError cancel() caused was handled here (or swallowed by the
            # TaskGroup in favour of a node failure): take back that one request. Other
            # requests are not judged by `cancelling()`: a block's own 3.11 TaskGroup can
            # leave that count raised (see engine/tasks.py).
            self._cancel_delivered = False
            task.uncancel()
        if (
            self._cancel_requested
            and status is ExecutionStatus.SUCCESS
            and self.error is None
            and any(not s.is_final for s in self.status)
        ):
            status = ExecutionStatus.CANCELLED
            self.error = ErrorInfo(type="cancelled", message="the execution was cancelled")
        if self.error is not None and status is ExecutionStatus.SUCCESS:
            status = ExecutionStatus.ERROR
        if status is ExecutionStatus.SUCCESS and self.parked_until is not None:
            status = ExecutionStatus.WAITING
        return await self._conclude(status)

    async def abandon(self) -> None:
        """Record a sub-workflow whose calling execution stopped while it ran as `cancelled`."""
        if self.finished:
            return
        self.error = ErrorInfo(type="cancelled", message="the calling execution stopped")
        await self._conclude(ExecutionStatus.CANCELLED)

    async def _conclude(self, status: ExecutionStatus) -> ExecutionRecord:
        """Close children and unfinished nodes, journal and return the final record."""
        for child in list(self.children or ()):
            await child.abandon()
        if status is ExecutionStatus.WAITING:
            # parked: unfinished nodes stay as they are for the resume
            record = self._record(status, None, None)
            record.wake_at = self.parked_until
        else:
            self._close_unfinished()
            duration = (time.perf_counter() - self._t0) * 1000
            record = self._record(status, self.engine.clock.now(), duration)
        if self.journaled:
            await self.engine.journal.execution_finished(record)
        self.finished = True
        return record

    async def run_body(self) -> JSON:
        """Run as a loop-body item and return its output.

        Raises:
            BodyFailed: a body node failed with `on_error: fail`.
        """
        self.started_at = self.parent.started_at if self.parent else self.engine.clock.now()
        with contextlib.suppress(_Abort):
            await self._run_graph()
        if self.error is not None:
            raise BodyFailed(self.error)
        return self.output()

    async def run_item(self, subplan: Plan, item: JSON, index: int) -> JSON:
        """Run a loop body for one item (inside this execution) and return its output.

        Raises:
            BlockError: a body node failed; its index and error are in `details`.
        """
        body = Run(
            self.engine,
            subplan,
            execution_id=self.execution_id,
            input=self.input,
            mode=self.mode,
            depth=self.depth,
            parent=self,
            item=item,
            index=index,
            journaled=False,
        )
        try:
            return await body.run_body()
        except BodyFailed as exc:
            raise BlockError(
                f"item {index}: node {exc.error.node!r} failed: {exc.error.message}",
                details={"index": index, "error": exc.error.model_dump()},
            ) from None

    # --- the graph --------------------------------------------------------------------------

    async def _run_graph(self) -> None:
        try:
            async with tasks.TaskGroup() as group:
                self._group = group
                first = self._start(self.frontier.starts())
                if first is not None:
                    await self._run_from(first)
        except* _Abort:
            raise _Abort from None
        finally:
            self._group = None

    def _start(self, ready: list[int]) -> PlanNode | None:
        """Launch ready nodes as tasks, all but one, which the caller runs inline.

        Running one successor in the task that finished its predecessor saves a task per node
        on chains (and makes a one-node loop body run without any task). Nodes finished in a
        prior run are replayed, not re-run.
        """
        prior = self.prior
        group = self._group
        if group is None:
            raise RuntimeError("nodes can only start while the graph runs")
        inline: PlanNode | None = None
        while ready:
            index = ready.pop()
            node = self.plan.nodes[index]
            if prior:
                previous = prior.get(node.id)
                if previous is not None and attempts.replayable(previous):
                    more = self._replay(index, previous)
                    ready.extend(more)
                    continue
            self.status[index] = NodeStatus.RUNNING
            if inline is None:
                inline = node
            else:
                group.create_task(self._run_from(node), name=f"{self.execution_id}:{node.id}")
        return inline

    async def _run_from(self, pnode: PlanNode | None) -> None:
        """Run a node, then the successor it hands back, and so on; a successor starts when its
        predecessor finished (one clock read between them) unless the loop had a turn between."""
        steps = 0
        now: datetime | None = None
        while pnode is not None:
            index = pnode.index
            pnode = await self._run_node(pnode, now)
            steps += 1
            if not steps % _YIELD_EVERY:
                await asyncio.sleep(0)
                now = None
            elif pnode is not None:
                record = self.records[index]
                now = record.finished_at if record is not None else None

    def _replay(self, index: int, previous: NodeRecord) -> list[int]:
        """Apply a stored result as if the node had just finished."""
        self.status[index] = previous.status
        self.records[index] = previous
        ports = frozenset(previous.ports or ())
        self.ports[index] = ports
        self._remember(index, previous)
        effects = previous.effects
        if effects:
            self.vars.update(effects.get("vars") or {})
            response = effects.get("response")
            if response is not None:
                self.top().response = WebhookResponse.model_validate(response)
        ready, skipped = self.frontier.finish(index, ports)
        for child in skipped:
            self._skip(child)
        return ready

    def _park(
        self, pnode: PlanNode, attempts_made: int, started_at: datetime, outcome: attempts.Outcome
    ) -> None:
        """Store a parked node as `running` with its deadline; the execution will be `waiting`
        until the earliest deadline, and a resume runs the node again. A node waiting for a
        resume (std/wait) is marked so a resume can hand it its payload."""
        until = outcome.parked_until
        assert until is not None  # noqa: S101 - only parked outcomes come here
        data: dict[str, JSON] = {attempts.PARKED_KEY: until.isoformat()}
        if outcome.parked_for_resume:
            data[attempts.WAIT_KEY] = True
        record = NodeRecord(
            status=NodeStatus.RUNNING, data=data, attempts=attempts_made, started_at=started_at
        )
        self.records[pnode.index] = record
        if self.parked_until is None or until < self.parked_until:
            self.parked_until = until
        if self.journaled:
            self.engine.journal.node_finished(self.execution_id, pnode.id, record)

    def top(self) -> "Run":
        """The execution's own Run (loop bodies have parents)."""
        run = self
        while run.parent is not None:
            run = run.parent
        return run

    def note_effect(self, index: int, kind: str, value: JSON) -> None:
        """Remember a side effect of node `index` for its record (see NodeRecord.effects)."""
        if self.effects is None:
            self.effects = {}
        effects = self.effects.setdefault(index, {})
        if kind == "vars":
            effects.setdefault("vars", {}).update(value)
        else:
            effects[kind] = value

    async def _run_node(self, pnode: PlanNode, begun: datetime | None = None) -> PlanNode | None:
        """Run `pnode` and its retries; the successor to run inline. `begun`: when it became
        ready, if the caller has just read the clock."""
        engine = self.engine
        journal = engine.journal
        clock = engine.clock
        slots = self._slots
        index = pnode.index
        started_at: datetime | None = None
        t0 = time.perf_counter()
        number = 0
        while True:
            number += 1
            if slots is not None:
                await slots.acquire()
                begun = None
            try:
                if begun is not None:
                    now, begun = begun, None
                else:
                    now = clock.now()
                if started_at is None:
                    started_at = now
                if self.journaled:
                    journal.node_started(self.execution_id, pnode.id, number, now)
                self.scope.now = now
                outcome = await attempts.run_attempt(
                    pnode, self.scope, functools.partial(context.NodeContext, self, pnode, number)
                )
            finally:
                if slots is not None:
                    slots.release()
            if engine.redactor.active:
                outcome = attempts.redact(outcome, engine.redactor)
            if outcome.ok or not outcome.retryable:
                break
            delay = retry.next_delay(pnode.retry, number, retry_after_ms=outcome.retry_after_ms)
            if delay is None:
                break
            if self.journaled and outcome.error is not None:
                journal.attempt_failed(self.execution_id, pnode.id, number, outcome.error, delay)
            await clock.sleep(delay)
        if outcome.parked_until is not None:
            self._park(pnode, number, started_at, outcome)
            return None
        duration = (time.perf_counter() - t0) * 1000
        effects = self.effects.pop(index, None) if self.effects else None
        record, ports = attempts.final_record(
            outcome, pnode.node.on_error, number, started_at, clock.now(), duration, effects
        )
        if not outcome.ok and pnode.node.on_error == "fail":
            # Set before the journal call, so a sibling failing meanwhile does not win.
            if self.error is None:
                self.error = outcome.error
            self._finish(index, record, ports)
            raise _Abort
        return self._finish(index, record, ports)

    def _finish(self, index: int, record: NodeRecord, ports: frozenset[str]) -> PlanNode | None:
        self.status[index] = record.status
        self.records[index] = record
        self.ports[index] = ports
        self._remember(index, record)
        if self.journaled:
            self.engine.journal.node_finished(self.execution_id, self.plan.nodes[index].id, record)
        if record.status is NodeStatus.ERROR and not ports:
            return None
        ready, skipped = self.frontier.finish(index, ports)
        for child in skipped:
            self._skip(child)
        return self._start(ready) if ready else None

    def _skip(self, index: int) -> None:
        record = NodeRecord(status=NodeStatus.SKIPPED, ports=[])
        self.status[index] = NodeStatus.SKIPPED
        self.records[index] = record
        self._remember(index, record)
        if self.journaled:
            self.engine.journal.node_finished(self.execution_id, self.plan.nodes[index].id, record)

    def _remember(self, index: int, record: NodeRecord) -> None:
        self._finished += 1
        self.finish_order[index] = self._finished
        self.own_views.set(self.plan.nodes[index].id, record)

    def _close_unfinished(self) -> None:
        """Nodes that never finished end as `cancelled` (the execution stopped or failed)."""
        for index, status in enumerate(self.status):
            if status is NodeStatus.PENDING or status is NodeStatus.RUNNING:
                record = NodeRecord(status=NodeStatus.CANCELLED)
                self.status[index] = NodeStatus.CANCELLED
                self.records[index] = record
                if self.journaled:
                    self.engine.journal.node_finished(
                        self.execution_id, self.plan.nodes[index].id, record
                    )

    # --- inputs and outputs ------------------------------------------------------------------

    def inputs_of(self, pnode: PlanNode) -> dict[str, JSON]:
        """Data of the predecessors that activated `pnode`, in the order they finished."""
        activating = [
            p
            for p in pnode.predecessors
            if not self.plan.nodes[p].successors[pnode.index].isdisjoint(self.ports[p])
        ]
        activating.sort(key=self.finish_order.__getitem__)
        return {self.plan.nodes[p].id: self._data(p) for p in activating}

    def input_of(self, pnode: PlanNode) -> JSON:
        """The single activated predecessor's data (the first to finish if several), or
        the execution input for a start node."""
        if not pnode.predecessors:
            return self.scope.input
        if len(pnode.predecessors) == 1:
            return self._data(pnode.predecessors[0])
        inputs = self.inputs_of(pnode)
        return next(iter(inputs.values()), None)

    def _data(self, index: int) -> JSON:
        record = self.records[index]
        return record.data if record is not None else None

    def output(self) -> JSON:
        """SPEC §2: std/respond's body, else the single sink's data, else {sink id: data}."""
        if self.response is not None:
            return self.response.body
        ran = [
            i
            for i in self.plan.sinks
            if self.status[i] is NodeStatus.SUCCESS or self.status[i] is NodeStatus.ERROR
        ]
        if len(ran) == 1:
            return self._data(ran[0])
        return {self.plan.nodes[i].id: self._data(i) for i in ran}

    def _record(
        self,
        status: ExecutionStatus,
        finished_at: datetime | None,
        duration_ms: float | None = None,
    ) -> ExecutionRecord:
        final = status.is_final or status is ExecutionStatus.WAITING
        # validated, and faster than model_construct: pydantic-core checks these few fields
        # (user data is `Any`) quicker than model_construct's Python loop over them
        return ExecutionRecord(
            execution_id=self.execution_id,
            workflow_id=self.plan.workflow_id,
            status=status,
            mode=self.mode,
            started_at=self.started_at,
            finished_at=finished_at,
            duration_ms=duration_ms,
            input=self.input,
            output=self.output() if status is ExecutionStatus.SUCCESS else None,
            error=self.error,
            response=self.response,
            nodes={
                n.id: r for n, r in zip(self.plan.nodes, self.records, strict=True) if r is not None
            }
            if final
            else {},
        )


class BodyFailed(Exception):
    """A loop-body item failed; `.error` is the failing node's error."""

    def __init__(self, error: ErrorInfo):
        super().__init__(error.message)
        self.error = error
