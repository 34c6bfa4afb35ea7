"""Where a server's executions get their workflows: `LatestPlans` (the compiled latest version
of each stored workflow) and `Documents` (the stored copy every execution row refers to).
std/subworkflow's source is `subworkflows.StoredWorkflows`."""

import asyncio
import functools
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conv3n.compiler import Plan
from conv3n.engine.redact import Redactor
from conv3n.storage import tables, workflows

if TYPE_CHECKING:
    from conv3n.runtime.service import Runtime


LATEST_TTL_S = 1.0
"""How long the latest version of a workflow is taken as known without asking the database.
Changes through this process's API or Runtime are seen at once (they call `forget()`);
changes another process makes are seen within this time (plus one database read)."""


class LatestPlans:
    """The compiled latest version of each stored workflow, for webhooks and runs.

    Versions never change, so each is compiled once; which version is the latest is asked
    again after `LATEST_TTL_S` (a webhook call then costs no database read). The creation
    time is part of the key: a deleted and re-created workflow starts at version 1 again.

    An expired entry is refreshed in the background while callers keep getting it: under
    load, awaiting the read made every request of that moment wait for the database thread
    (which waits for the GIL), a 100 ms stall each second at the 99th percentile. Callers
    that find no entry share one load: the first 10 concurrent webhooks of a 20-node
    workflow each compiled it, and their answers took 250 ms instead of 15.
    """

    def __init__(self, runtime: "Runtime", *, keep: int = 1000):
        self._runtime = runtime
        self._keep = keep
        self._compiled: dict[tuple[str, int, datetime], Plan] = {}
        self._latest: dict[str, tuple[float, Plan, int]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self._loading: dict[str, asyncio.Task[tuple[Plan, int]]] = {}
        self._generation = 0

    async def latest(self, workflow_id: str) -> tuple[Plan, int]:
        """(plan, version) of the workflow's latest version (WorkflowNotFound if absent)."""
        known = self._latest.get(workflow_id)
        if known is None:
            loading = self._loading.get(workflow_id)
            if loading is None:
                loading = self._loading[workflow_id] = asyncio.create_task(
                    self._load(workflow_id), name=f"conv3n-load-plan:{workflow_id}"
                )
                loading.add_done_callback(functools.partial(self._loaded, workflow_id))
            return await asyncio.shield(loading)
        if known[0] <= time.monotonic() and workflow_id not in self._refreshing:
            self._refreshing[workflow_id] = asyncio.create_task(
                self._refresh(workflow_id), name=f"conv3n-refresh-plan:{workflow_id}"
            )
        return known[1], known[2]

    def _loaded(self, workflow_id: str, task: "asyncio.Task[tuple[Plan, int]]") -> None:
        if self._loading.get(workflow_id) is task:
            del self._loading[workflow_id]
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have gone away meanwhile

    async def _refresh(self, workflow_id: str) -> None:
        try:
            await self._load(workflow_id)
        except Exception:  # noqa: BLE001 - deleted, database away: the next call reads, raises
            self._latest.pop(workflow_id, None)
        finally:
            self._refreshing.pop(workflow_id, None)

    async def _load(self, workflow_id: str) -> tuple[Plan, int]:
        generation = self._generation
        stored = await workflows.get(self._runtime.db, workflow_id)
        key = (workflow_id, stored.version, stored.created_at)
        plan = self._compiled.get(key)
        if plan is None:
            if len(self._compiled) >= self._keep:
                self._compiled.clear()
            plan = self._compiled[key] = self._runtime.compile(stored.workflow)
        if generation == self._generation:  # no change was made while this read ran
            if len(self._latest) >= self._keep:
                self._latest.clear()
            self._latest[workflow_id] = (time.monotonic() + LATEST_TTL_S, plan, stored.version)
        return plan, stored.version

    def forget(self) -> None:
        """Ask the database again next time (a workflow was saved, replaced or deleted)."""
        self._generation += 1
        self._latest.clear()

    async def settle(self) -> None:
        """Wait for the refreshes in flight."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop the loads and refreshes in flight."""
        tasks = [*self._refreshing.values(), *self._loading.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Documents:
    """Each plan's workflow document as stored JSON text and its hash, computed once per plan:
    every execution row refers to it (secret values masked)."""

    def __init__(self, redactor: Redactor, *, keep: int = 1000):
        self._redactor = redactor
        self._keep = keep
        self._cache: dict[int, tuple[Plan, dict[str, Any]]] = {}

    def fields(self, plan: Plan) -> dict[str, Any]:
        """`{"document": text, "document_hash": hash}` for an execution row of `plan`."""
        cached = self._cache.get(id(plan))
        if cached is None or cached[0] is not plan:
            if len(self._cache) > self._keep:
                self._cache.clear()
            text = tables.Encoded(self._redactor.text(tables.encode(plan.workflow.to_document())))
            fields = {"document": text, "document_hash": tables.document_hash(text)}
            cached = self._cache[id(plan)] = (plan, fields)
        return cached[1]
