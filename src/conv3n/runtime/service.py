"""`Runtime`: conv3n with storage — database, journal, secrets and engine wired together.

The composition root for everything that remembers: `conv3n run --store`, the `executions`,
`workflows`, `secrets` and `db` commands, and (later) the server. Use as an async context
manager; it owns the database pool, the journal's writer task, the lease renewer and the engine.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conv3n.compiler import Plan, compile_document, compile_workflow
from conv3n.engine import Clock, Engine, EngineOptions, Journal, Journals, new_execution_id
from conv3n.engine.redact import Redactor
from conv3n.errors import Conflict, InvalidInput, Unavailable, WorkflowInvalid
from conv3n.model import (
    JSON,
    ExecutionRecord,
    ExecutionStatus,
    NodeRecord,
    NodeStatus,
    Problem,
    Workflow,
)
from conv3n.model.stored import ExecutionSummary, StoredExecution, StoredWorkflow
from conv3n.observability import Metrics
from conv3n.observability.logging import bind_execution
from conv3n.runtime import ephemeral, files, folders, leases, lifecycle, reruns, sources
from conv3n.runtime import webhooks as webhook_index
from conv3n.runtime.limits import ExecutionLimits, Ticket
from conv3n.runtime.settings import Settings
from conv3n.sdk import BlockRegistry
from conv3n.storage import (
    Database,
    RetentionPolicy,
    StoreJournal,
    executions,
    retention,
    schema,
    secrets,
    workflows,
)


class Runtime:
    """Everything an execution with storage needs, for one process.

    Attributes:
        instance: this process's id in execution leases (`host:pid:random`).
        redactor: masks the stored secrets' values (records, stored results, logs).
        limits: the concurrency limits and queue of this process's executions.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: BlockRegistry | None = None,
        clock: Clock | None = None,
        metrics: "Metrics | None" = None,
    ):
        self.settings = settings or Settings.from_env()
        self.registry = registry or BlockRegistry.discover()
        self.db = Database(self.settings.database)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._secrets: dict[str, str] = {}
        self.redactor = self._redactor = Redactor()
        self._cipher: secrets.Cipher | None = None
        self.journal = (StoreJournal if self.settings.persist else ephemeral.DiscardingJournal)(
            self.db, max_result_bytes=self.settings.max_result_bytes, redact=self._redactor.text
        )
        self.metrics = metrics
        self.limits = ExecutionLimits(self.settings.max_concurrency, self.settings.max_queued)
        journal: Journal = self.journal if metrics is None else Journals([self.journal, metrics])
        if metrics is not None:
            metrics.watch(self.limits)
        self.engine = Engine(
            journal=journal,
            secrets=self._secrets,
            redactor=self._redactor,
            workflows=sources.StoredWorkflows(self),
            clock=clock,
            options=EngineOptions(
                env=self.settings.visible_env(),
                max_depth=self.settings.max_subworkflow_depth,
                park_after_s=self.settings.park_after_seconds,
                files_root=self.settings.files_root,
                cache_dir=self.settings.cache_dir,
            ),
        )
        self._mine: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.webhooks = webhook_index.WebhookIndex()
        self._documents = sources.Documents(self._redactor)
        self._plans = sources.LatestPlans(self)
        self._renewer: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> "Runtime":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, bring the schema up to date (SQLite) or check it, start the journal.

        Raises:
            Unavailable: the database cannot be reached or its schema is out of date.
        """
        if self.db.is_sqlite:
            await schema.upgrade(self.db)
        elif await schema.current_revision(self.db) != schema.HEAD:
            raise Unavailable("the database schema is not up to date: run `conv3n db upgrade`")
        await self._load_secrets()
        await self.journal.start()
        await self.refresh_triggers()
        self._renewer = asyncio.create_task(self._renew_leases(), name="conv3n-lease-renewer")

    async def close(self) -> None:
        """Wait for background executions and children, flush the journal, close the pool."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.engine.aclose()
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        await self.journal.close()
        await self.db.close()

    async def _renew_leases(self) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Unavailable):
                await executions.renew(
                    self.db,
                    owner=self.instance,
                    execution_ids=self._mine,
                    until=self._lease_until(),
                )

    def _lease_until(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.settings.lease_seconds)

    async def shutdown(self, grace_s: float, *, also: Iterable["asyncio.Task[Any]"] = ()) -> int:
        """Let background executions (and the tasks `also`) finish within `grace_s`, then park
        the rest for the next start (see `lifecycle`); how many were left to resume."""
        extra = set(also)
        await lifecycle.drain(lambda: self._background | extra, grace_s)
        await self.journal.flush()
        return await executions.release_owned(self.db, owner=self.instance)

    # --- secrets ------------------------------------------------------------------------------

    def _cipher_for_use(self) -> secrets.Cipher:
        if self._cipher is None:
            if self.settings.secret_key:
                key = secrets.decode_key(self.settings.secret_key)
            else:
                key = secrets.load_or_create_key(self.settings.secret_key_file)
            self._cipher = secrets.Cipher(key)
        return self._cipher

    async def _load_secrets(self) -> None:
        names = await secrets.names(self.db)
        values = await secrets.load_all(self.db, self._cipher_for_use()) if names else {}
        self._secrets.clear()
        self._secrets.update(values)
        self._redactor.update(values.values())

    async def set_secret(self, name: str, value: str) -> bool:
        """Store a secret encrypted; True if it is new."""
        created = await secrets.put(self.db, self._cipher_for_use(), name, value)
        await self._load_secrets()
        return created

    async def delete_secret(self, name: str) -> None:
        """Delete a secret (SecretNotFound if absent)."""
        await secrets.remove(self.db, name)
        await self._load_secrets()

    async def secret_names(self) -> list[dict[str, Any]]:
        """Names and times of every secret, never values."""
        return await secrets.names(self.db)

    # --- workflows ----------------------------------------------------------------------------

    def compile(self, workflow: Workflow, *, source: str | None = None) -> Plan:
        """Validate and compile (WorkflowInvalid lists every problem)."""
        return compile_workflow(workflow, self.registry, source=source)

    async def save_workflow(
        self, workflow: Workflow, *, workflow_id: str | None = None
    ) -> StoredWorkflow:
        """Validate, then store a workflow: a new one, or a new version of an existing one."""
        wid = workflow_id or workflow.id
        if not wid:
            raise WorkflowInvalid([Problem(("id",), "a stored workflow needs an id")])
        self.compile(workflow)
        self._plans.forget()
        return await workflows.upsert(self.db, wid, workflow)

    async def import_folder(self, folder: Path) -> list[StoredWorkflow]:
        """Store every workflow file of a folder (`folders.import_folder`)."""
        return await folders.import_folder(self, folder)

    async def export_folder(self, folder: Path) -> list[Path]:
        """Write every stored workflow to `folder/<id>.yaml` (`folders.export_folder`)."""
        return await folders.export_folder(self, folder)

    # --- executions ---------------------------------------------------------------------------

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
    ) -> ExecutionRecord:
        """Store a new execution of `plan` and run it to the end (`queued` until the
        concurrency limits give it a turn).

        With an `idempotency_key` seen before, the earlier execution's record is returned
        (waiting for it if it is still running here) and nothing new starts.

        Raises:
            Overloaded: too many executions wait already; nothing was stored.
        """
        execution_id = execution_id or new_execution_id()
        ticket = ticket or self.limits.enter(plan.workflow_id, plan.workflow.settings.concurrency)
        row = {
            "id": execution_id,
            "workflow_id": plan.workflow_id,
            "workflow_version": workflow_version,
            "status": (ExecutionStatus.QUEUED if ticket.queued else ExecutionStatus.RUNNING).value,
            "mode": mode,
            "input": input,
            "output": None,
            "error": None,
            "response": None,
            "nodes": None,
            **self._documents.fields(plan),
            "source": plan.source,
            "idempotency_key": idempotency_key,
            "parent_id": parent_id,
            "started_at": None,
            "finished_at": None,
            "duration_ms": None,
            "wake_at": None,
            "owner": self.instance,
            "lease_until": self._lease_until(),
            "created_at": datetime.now(UTC),
        }
        try:
            if idempotency_key is None:
                # the common case joins the journal's next group commit
                self.journal.execution_created(row)
            else:
                stored_id, created = await executions.create_row(self.db, row)
                if not created:
                    ticket.release()
                    await self.journal.flush()
                    return await executions.get_record(self.db, stored_id)
            if prior:
                await self._copy_prior(execution_id, prior)
        except BaseException:
            ticket.release()
            raise
        return await self._run(
            plan, input, execution_id=execution_id, mode=mode, prior=prior, ticket=ticket
        )

    async def _copy_prior(self, execution_id: str, prior: Mapping[str, NodeRecord]) -> None:
        for node_id, record in prior.items():
            await self.journal.node_finished(execution_id, node_id, record)
        await self.journal.flush()

    async def _run(
        self,
        plan: Plan,
        input: JSON,
        *,
        execution_id: str,
        mode: str,
        prior: Mapping[str, NodeRecord] | None,
        ticket: Ticket | None = None,
    ) -> ExecutionRecord:
        if ticket is None:  # accepted before (a resume): it waits for a turn, never refused
            ticket = self.limits.enter(
                plan.workflow_id, plan.workflow.settings.concurrency, bounded=False
            )
        self._mine.add(execution_id)  # leased (and renewed) while it waits, too
        try:
            with bind_execution(execution_id, plan.workflow_id):
                await ticket.wait()
                record = await self.engine.execute(
                    plan, input, mode=mode, execution_id=execution_id, prior=prior
                )
                lifecycle.log_finished(record)
        finally:
            ticket.release()
            self._mine.discard(execution_id)
        return record

    async def run_file(
        self,
        path: Path,
        input: JSON = None,
        *,
        idempotency_key: str | None = None,
    ) -> ExecutionRecord:
        """Compile a workflow file and run it as a stored execution."""
        plan = files.compile_file(path, self.registry)
        return await self.execute(plan, input, idempotency_key=idempotency_key)

    async def start_workflow(
        self,
        workflow_id: str,
        input: JSON = None,
        *,
        mode: str = "manual",
        idempotency_key: str | None = None,
    ) -> str:
        """Start a stored workflow without waiting; its execution id (stored before return)."""
        plan, version = await self._latest_plan(workflow_id)
        if idempotency_key is not None:
            existing = await executions.find_by_idempotency_key(self.db, idempotency_key)
            if existing is not None:
                return existing
        execution_id = new_execution_id()
        ticket = self.limits.enter(plan.workflow_id, plan.workflow.settings.concurrency)
        task = asyncio.create_task(
            self.execute(
                plan,
                input,
                mode=mode,
                workflow_version=version,
                idempotency_key=idempotency_key,
                execution_id=execution_id,
                ticket=ticket,
            ),
            name=f"execution:{execution_id}",
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await asyncio.sleep(0)  # let it queue its row before the caller answers
        await self.journal.flush()
        return execution_id

    async def _latest_plan(self, workflow_id: str) -> tuple[Plan, int]:
        """The compiled latest version of a stored workflow (see `sources.LatestPlans`)."""
        return await self._plans.latest(workflow_id)

    async def run_workflow(
        self,
        workflow_id: str,
        input: JSON = None,
        *,
        mode: str = "manual",
        idempotency_key: str | None = None,
    ) -> ExecutionRecord:
        """Run a stored workflow at its latest version."""
        plan, version = await self._latest_plan(workflow_id)
        return await self.execute(
            plan, input, mode=mode, workflow_version=version, idempotency_key=idempotency_key
        )

    async def record(self, execution_id: str, *, full: bool = True) -> ExecutionRecord:
        """An execution's record (ExecutionNotFound if absent)."""
        await self.journal.flush()
        return await executions.get_record(self.db, execution_id, full=full)

    async def list_executions(self, **filters: Any) -> list[ExecutionSummary]:
        """Executions newest first (filters: workflow_id, status, since, until, before, limit)."""
        await self.journal.flush()
        return await executions.page(self.db, **filters)

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

    async def resume_now(self, execution_id: str) -> ExecutionRecord:
        """Resume one `waiting` execution at once, even before its timer is due.

        Raises:
            Conflict: the execution is not waiting.
        """
        await self.journal.flush()
        item = await executions.get_stored(self.db, execution_id)
        if item.status is not ExecutionStatus.WAITING:
            raise Conflict(f"execution {execution_id} is {item.status.value}, not waiting")
        now = datetime.now(UTC)
        claimed = await executions.claim(
            self.db, execution_id, owner=self.instance, until=self._lease_until(), now=now
        )
        if not claimed:
            raise Conflict(f"execution {execution_id} is being resumed elsewhere")
        prior = await executions.node_records(self.db, execution_id)
        early = self.engine.clock.now().isoformat()
        for record in prior.values():
            # a parked node's deadline becomes now, so its wait ends at once
            if record.status is NodeStatus.RUNNING and isinstance(record.data, dict):
                record.data = {k: early if k.startswith("$") else v for k, v in record.data.items()}
        plan = compile_document(item.document, self.registry, source=item.source)
        return await self._run(
            plan, item.input, execution_id=execution_id, mode=item.mode, prior=prior
        )

    # --- triggers -------------------------------------------------------------------------------

    async def refresh_triggers(self) -> None:
        """Rebuild the index of webhook triggers of active workflows (and forget which
        versions were the latest: the API calls this after every change of a workflow)."""
        self._plans.forget()
        active: list[tuple[str, Workflow]] = []
        after: str | None = None
        while page := await workflows.list_page(self.db, after=after, limit=500, active=True):
            active.extend((item.id, item.workflow) for item in page)
            after = page[-1].id
        self.webhooks.rebuild(active)

    def webhook_for(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """(workflow id, trigger) of the active webhook trigger for this path and method."""
        return self.webhooks.find(path, method)

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
        plan = compile_document(item.document, self.registry, source=item.source)
        prior = await executions.node_records(self.db, item.execution_id)
        return await self._run(
            plan, item.input, execution_id=item.execution_id, mode=item.mode, prior=prior
        )

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

    # --- retention ----------------------------------------------------------------------------

    def retention_policy(self) -> RetentionPolicy:
        """The retention settings as a policy (0 means keep everything of that kind)."""
        return RetentionPolicy(
            max_age_days=self.settings.retention_days or None,
            max_per_workflow=self.settings.retention_per_workflow or None,
        )

    async def run_retention(self, *, every_s: float = 3600.0) -> None:
        """Prune history per the retention settings now and then every `every_s` seconds,
        until cancelled (a server runs this; each batch is its own short transaction)."""
        while True:
            with contextlib.suppress(Unavailable):
                await self.prune()
            await asyncio.sleep(every_s)

    async def prune(self, policy: RetentionPolicy | None = None) -> int:
        """Prune history per the policy, then give SQLite's free pages back."""
        await self.journal.flush()
        deleted = await retention.prune(self.db, policy or self.retention_policy())
        if deleted:
            await retention.reclaim_space(self.db)
        return deleted
