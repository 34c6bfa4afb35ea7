"""`Recovery`: how a Runtime runs stored executions on — resume after a crash or restart,
resume a parked one (a due timer, a std/wait's payload), retry a failed one, fork one.

A mixin of `service.Runtime` (its methods take the Runtime as `self`); called by the API, the
CLI and the server's background loops.
"""

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from conv3n.compiler import compile_document, compile_workflow
from conv3n.errors import Conflict, InvalidInput, Unavailable
from conv3n.model import JSON, ExecutionRecord, ExecutionStatus, NodeRecord
from conv3n.model.stored import StoredExecution
from conv3n.runtime import leases, reruns
from conv3n.storage import executions, workflows

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping
    from typing import Any

    from conv3n.compiler import Plan
    from conv3n.engine import Engine
    from conv3n.runtime.limits import Ticket
    from conv3n.sdk import BlockRegistry
    from conv3n.storage import Database, StoreJournal


class Recovery:
    """Resume, retry and fork for `service.Runtime`, which provides what is declared here."""

    if TYPE_CHECKING:
        db: Database
        journal: StoreJournal
        engine: Engine
        registry: BlockRegistry
        instance: str
        _mine: set[str]

        def _lease_until(self) -> datetime: ...
        def _spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> None: ...
        async def _run(
            self,
            plan: Plan,
            input: JSON,
            *,
            execution_id: str,
            mode: str,
            prior: Mapping[str, NodeRecord] | None,
            ticket: Ticket | None = None,
        ) -> ExecutionRecord: ...
        async def execute(
            self,
            plan: Plan,
            input: JSON = None,
            *,
            mode: str = "manual",
            workflow_version: int | None = None,
            idempotency_key: str | None = None,
            prior: Mapping[str, NodeRecord] | None = None,
            parent_id: str | None = None,
            execution_id: str | None = None,
            ticket: Ticket | None = None,
        ) -> ExecutionRecord: ...

    async def resume_interrupted(self) -> list[ExecutionRecord]:
        """Finish every execution a crash or restart left unfinished, from its stored results.

        Only executions whose lease ran out are taken, so executions that another live process
        is running are left alone. Finished nodes are not re-run.
        """
        await self.journal.flush()
        now = datetime.now(UTC)
        claimed: list[StoredExecution] = []
        for item, owner, lease_until in await executions.unfinished(self.db):
            if item.execution_id in self._mine:
                continue  # this process runs it
            dead = owner if owner and leases.owner_is_dead(owner) else None
            if owner and not dead and lease_until is not None and lease_until >= now:
                continue  # a live process runs it
            if await executions.claim(
                self.db,
                item.execution_id,
                owner=self.instance,
                until=self._lease_until(),
                now=now,
                dead_owner=dead,
            ):
                claimed.append(item)
        if not claimed:
            return []
        return list(await asyncio.gather(*(self._resume(item) for item in claimed)))

    async def resume_now(
        self, execution_id: str, payload: JSON = None, *, node: str | None = None
    ) -> ExecutionRecord:
        """Resume one `waiting` execution at once: its std/wait nodes get `payload` (only
        `node`, if given); with none waiting for a resume, parked timers end now.

        Raises:
            Conflict: the execution is not waiting, or is being resumed elsewhere.
            InvalidInput: `node` is not a std/wait node waiting in this execution.
        """
        return await self._resume_claimed(*await self.claim_resume(execution_id, payload, node))

    async def resume_later(
        self, execution_id: str, payload: JSON = None, *, node: str | None = None
    ) -> None:
        """Like `resume_now`, but return once the resume is claimed; it runs in the background."""
        claimed = await self.claim_resume(execution_id, payload, node)
        self._spawn(self._resume_claimed(*claimed), name=f"resume:{execution_id}")

    async def claim_resume(
        self, execution_id: str, payload: JSON = None, node: str | None = None
    ) -> tuple[StoredExecution, dict[str, NodeRecord]]:
        """Claim a `waiting` execution for a resume and hand the payload to its records (the
        first half of `resume_now`; the API answers in between when it does not wait)."""
        await self.journal.flush()
        item = await executions.get_stored(self.db, execution_id)
        if item.status is not ExecutionStatus.WAITING:
            raise Conflict(f"execution {execution_id} is {item.status.value}, not waiting")
        prior = await executions.node_records(self.db, execution_id)
        now = self.engine.clock.now()
        if not reruns.apply_resume(prior, payload, now=now.isoformat(), node=node):
            raise InvalidInput(
                f"node {node!r} is not waiting for a resume in execution {execution_id}",
                details={"node": node},
            )
        claimed = await executions.claim(
            self.db,
            execution_id,
            owner=self.instance,
            until=self._lease_until(),
            now=now,
            status=ExecutionStatus.WAITING,
        )
        if not claimed or execution_id in self._mine:
            raise Conflict(f"execution {execution_id} is already being resumed")
        self._mine.add(execution_id)  # no await since the check: a second resume here fails
        return item, prior

    async def _resume_claimed(
        self, item: StoredExecution, prior: dict[str, NodeRecord]
    ) -> ExecutionRecord:
        """Run a claimed execution on from its stored records."""
        plan = compile_document(item.document, self.registry, source=item.source)
        return await self._run(
            plan, item.input, execution_id=item.execution_id, mode=item.mode, prior=prior
        )

    async def resume_due(self) -> list[ExecutionRecord]:
        """Resume every `waiting` execution whose timer is due (a parked std/delay)."""
        await self.journal.flush()
        now = self.engine.clock.now()
        claimed = [
            item
            for item in await executions.waiting(self.db, due_before=now)
            if item.execution_id not in self._mine
            and await executions.claim(
                self.db, item.execution_id, owner=self.instance, until=self._lease_until(), now=now
            )
        ]
        if not claimed:
            return []
        return list(await asyncio.gather(*(self._resume(item) for item in claimed)))

    async def run_timers(self, *, poll_s: float = 1.0) -> None:
        """Resume waiting executions as they fall due, until cancelled (a server runs this)."""
        while True:
            with contextlib.suppress(Unavailable):
                await self.resume_due()
            await asyncio.sleep(poll_s)

    async def _resume(self, item: StoredExecution) -> ExecutionRecord:
        self._mine.add(item.execution_id)
        prior = await executions.node_records(self.db, item.execution_id)
        return await self._resume_claimed(item, prior)

    async def retry(self, execution_id: str) -> ExecutionRecord:
        """Re-run a failed execution from its failed nodes, as a new execution.

        Nodes that succeeded (or were routed) keep their results; the new execution's
        `parent_id` points at the old one.

        Raises:
            Conflict: the execution has not failed.
        """
        await self.journal.flush()
        stored = await executions.get_stored(self.db, execution_id)
        if stored.status not in (ExecutionStatus.ERROR, ExecutionStatus.CANCELLED):
            raise Conflict(
                f"execution {execution_id} is {stored.status.value}: only failed or "
                "cancelled executions can be retried"
            )
        records = await executions.node_records(self.db, execution_id)
        prior = {k: r for k, r in records.items() if reruns.reusable(r)}
        plan = compile_document(stored.document, self.registry, source=stored.source)
        return await self.execute(
            plan,
            stored.input,
            mode="retry",
            parent_id=execution_id,
            workflow_version=stored.workflow_version,
            prior=prior,
        )

    async def fork(
        self, execution_id: str, node_id: str, *, latest: bool = False
    ) -> ExecutionRecord:
        """Re-run an execution from `node_id` on: that node and everything after it run again,
        earlier results are reused. With `latest`, on the workflow's newest version.

        Raises:
            InvalidInput: the node does not exist in the workflow run.
        """
        await self.journal.flush()
        stored = await executions.get_stored(self.db, execution_id)
        version = stored.workflow_version
        if latest and stored.workflow_id:
            current = await workflows.get(self.db, stored.workflow_id)
            plan = compile_workflow(current.workflow, self.registry, source=stored.source)
            version = current.version
        else:
            plan = compile_document(stored.document, self.registry, source=stored.source)
        if node_id not in plan.by_id:
            raise InvalidInput(
                f"node {node_id!r} is not in the workflow", details={"node": node_id}
            )
        rerun = reruns.downstream(plan, node_id)
        records = await executions.node_records(self.db, execution_id)
        prior = {k: r for k, r in records.items() if k not in rerun and reruns.reusable(r)}
        return await self.execute(
            plan,
            stored.input,
            mode="fork",
            parent_id=execution_id,
            workflow_version=version,
            prior=prior,
        )
