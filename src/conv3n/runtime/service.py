"""`Runtime`: conv3n with storage — database, journal, secrets and engine wired together.

The composition root for everything that remembers: `conv3n run --store`, the `executions`,
`workflows`, `secrets` and `db` commands, and the server. Use as an async context
manager; it owns the database pool, the journal's writer task, the lease renewer and the engine.
"""

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conv3n.compiler import Plan, compile_workflow
from conv3n.engine import Clock, Engine, EngineOptions, Journal, Journals, new_execution_id
from conv3n.errors import Unavailable, WorkflowInvalid
from conv3n.model import (
    JSON,
    ExecutionRecord,
    ExecutionStatus,
    NodeRecord,
    Problem,
    Workflow,
)
from conv3n.model.stored import ExecutionSummary, StoredWorkflow
from conv3n.observability import Metrics
from conv3n.observability.logging import bind_execution
from conv3n.runtime import (
    blocks,
    ephemeral,
    files,
    folders,
    lifecycle,
    recovery,
    sources,
    subworkflows,
)
from conv3n.runtime import webhooks as webhook_index
from conv3n.runtime.limits import ExecutionLimits, Ticket
from conv3n.runtime.secret_store import SecretStore
from conv3n.runtime.settings import Settings
from conv3n.runtime.triggers import TriggerManager
from conv3n.sdk import BlockRegistry
from conv3n.storage import (
    Database,
    RetentionPolicy,
    StoreJournal,
    executions,
    retention,
    schema,
    workflows,
)
from conv3n.triggers import definitions


class Runtime(recovery.Recovery):
    """Everything an execution with storage needs, for one process.

    Attributes:
        instance: this process's id in execution leases (`host:pid:random`).
        secrets: the stored secrets, their decrypted values (`$secrets`) and the redactor that
            masks them in records, stored results and logs.
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
        self.registry = registry or blocks.block_registry(self.settings)
        self.db = Database(self.settings.database)
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.secrets = SecretStore(self.db, self.settings)
        journal_type = StoreJournal if self.settings.persist else ephemeral.DiscardingJournal
        self.journal = journal_type(
            self.db,
            max_result_bytes=self.settings.max_result_bytes,
            redact=self.secrets.redactor.text,
            sqlite_writer=self.settings.sqlite_writer,
        )
        self.metrics = metrics
        self.limits = ExecutionLimits(self.settings.max_concurrency, self.settings.max_queued)
        journal: Journal = self.journal if metrics is None else Journals([self.journal, metrics])
        if metrics is not None:
            metrics.watch(self.limits)
        self.engine = Engine(
            journal=journal,
            secrets=self.secrets.values,
            redactor=self.secrets.redactor,
            workflows=subworkflows.StoredWorkflows(self),
            clock=clock,
            options=EngineOptions(
                env=self.settings.visible_env(),
                max_depth=self.settings.max_subworkflow_depth,
                park_after_s=self.settings.park_after_seconds,
                files_root=self.settings.files_root,
                cache_dir=self.settings.cache_dir,
                public_url=self.settings.public_url,
            ),
        )
        self._mine: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.webhooks = webhook_index.WebhookIndex()
        self.triggers = TriggerManager(self)
        self._reread_webhooks = webhook_index.RereadOnMiss(self.triggers.refresh)
        self._documents = sources.Documents(self.secrets.redactor)
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
        await self.secrets.load()
        await self.journal.start()
        await self.refresh_triggers()
        self._renewer = asyncio.create_task(self._renew_leases(), name="conv3n-lease-renewer")

    async def close(self) -> None:
        """Stop the triggers, wait for background executions, flush the journal, close the pool."""
        await self.triggers.close()
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.engine.aclose()
        await self._plans.close()
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
        definitions.checked(lambda: self.compile(workflow), workflow.triggers)
        stored = await workflows.upsert(self.db, wid, workflow)
        self._plans.forget()  # after: a read that ran during the upsert is not kept
        return stored

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
        execution_id, existing, ticket = await self._admit(
            plan,
            input,
            execution_id=execution_id or new_execution_id(),
            mode=mode,
            workflow_version=workflow_version,
            idempotency_key=idempotency_key,
            parent_id=parent_id,
            ticket=ticket,
        )
        if existing is not None:
            await self.journal.flush()
            return await executions.get_record(self.db, existing)
        if prior:
            try:
                await self._copy_prior(execution_id, prior)
            except BaseException:
                ticket.release()
                raise
        return await self._run(
            plan, input, execution_id=execution_id, mode=mode, prior=prior, ticket=ticket
        )

    async def _admit(
        self,
        plan: Plan,
        input: JSON,
        *,
        execution_id: str,
        mode: str,
        workflow_version: int | None,
        idempotency_key: str | None = None,
        parent_id: str | None = None,
        ticket: Ticket | None = None,
    ) -> tuple[str, str | None, Ticket]:
        """Take a turn under the concurrency limits and store the new execution's row:
        `(execution_id, None, ticket)`; for an idempotency key seen before, the existing
        execution's id as the second item (and the turn given back).

        Raises:
            Overloaded: too many executions wait already; nothing was stored.
        """
        ticket = ticket or self.limits.enter(plan.workflow_id, plan.workflow.settings.concurrency)
        row = self._new_row(
            plan,
            input,
            execution_id=execution_id,
            mode=mode,
            workflow_version=workflow_version,
            idempotency_key=idempotency_key,
            parent_id=parent_id,
            queued=ticket.queued,
        )
        try:
            if idempotency_key is None:
                # the common case joins the journal's next group commit
                self.journal.execution_created(row)
                return execution_id, None, ticket
            stored_id, created = await executions.create_row(self.db, row)
        except BaseException:
            ticket.release()
            raise
        if not created:
            ticket.release()
            return stored_id, stored_id, ticket
        return execution_id, None, ticket

    def _new_row(
        self,
        plan: Plan,
        input: JSON,
        *,
        execution_id: str,
        mode: str,
        workflow_version: int | None,
        idempotency_key: str | None = None,
        parent_id: str | None = None,
        queued: bool = False,
    ) -> dict[str, Any]:
        """The row of a new execution this process runs (leased to it)."""
        return {
            "id": execution_id,
            "workflow_id": plan.workflow_id,
            "workflow_version": workflow_version,
            "status": (ExecutionStatus.QUEUED if queued else ExecutionStatus.RUNNING).value,
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

    async def _copy_prior(self, execution_id: str, prior: Mapping[str, NodeRecord]) -> None:
        for node_id, record in prior.items():
            self.journal.node_finished(execution_id, node_id, record)
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
        """Start a stored workflow without waiting; its execution id, once its row is stored
        (an idempotency key seen before returns the first execution's id, starting nothing).

        Raises:
            Overloaded: too many executions wait already; nothing was stored.
        """
        plan, version = await self._latest_plan(workflow_id)
        execution_id, existing, ticket = await self._admit(
            plan,
            input,
            execution_id=new_execution_id(),
            mode=mode,
            workflow_version=version,
            idempotency_key=idempotency_key,
        )
        if existing is not None:
            return existing
        self._spawn(
            self._run(plan, input, execution_id=execution_id, mode=mode, prior=None, ticket=ticket),
            name=f"execution:{execution_id}",
        )
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

    def _spawn(self, work: "Coroutine[Any, Any, Any]", *, name: str) -> None:
        """Run `work` as a task this Runtime owns (`close()` waits for it)."""
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- triggers -------------------------------------------------------------------------------

    async def refresh_triggers(self) -> None:
        """Rebuild the webhook index; (re)start or stop the triggers of changed workflows (and
        forget which versions were the latest: the API calls this after every change)."""
        self._plans.forget()
        await self.triggers.refresh()

    def webhook_for(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """(workflow id, trigger) of the active webhook trigger for this path and method."""
        return self.webhooks.find(path, method)

    async def webhook_after_miss(self, path: str, method: str) -> tuple[str, dict[str, Any]] | None:
        """`webhook_for` once more after re-reading which workflows are active (rate-limited:
        `webhooks.RereadOnMiss`), for a path the index does not know."""
        if await self._reread_webhooks():
            return self.webhooks.find(path, method)
        return None

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
