"""`TriggerManager`: runs the cron, interval, file and queue triggers of active workflows.

Each trigger runs as a named task the manager owns. Cron, interval and file triggers run in
one process at a time: the process holding the trigger's lease in `trigger_state` runs it and
keeps its state there; the others stand by and take over when the lease is released, expires,
or its owner died. Every due time also carries an idempotency key, so even a handover race
starts one execution per due time. Queue triggers run in every process (competing consumers).

The manager only runs in `conv3n serve` (`start()`); elsewhere `refresh()` just rebuilds the
webhook index. It follows activation, deactivation and edits made in this process at once, and
those made by other processes every `CONV3N_TRIGGER_SYNC_SECONDS`.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from conv3n.errors import Unavailable
from conv3n.model import JSON, Workflow
from conv3n.model.stored import StoredTriggerState
from conv3n.runtime import leases
from conv3n.storage import executions, workflows
from conv3n.storage import triggers as stored_triggers
from conv3n.triggers import Clock, Fire, Trigger, TriggerState, factory
from conv3n.triggers.schedule import error_text

if TYPE_CHECKING:
    from conv3n.runtime.service import Runtime

log = logging.getLogger("conv3n.triggers")
_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_STORED_POLL_S = (0.0, 0.002, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    """One trigger of an active workflow, as `GET /api/triggers` lists it.

    Attributes:
        owner: the process running it (scheduled and file triggers), if any.
    """

    workflow_id: str
    index: int
    key: str
    type: str
    status: str
    fire_count: int = 0
    last_fire_at: datetime | None = None
    next_fire_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    owner: str | None = None


class _LeaseLost(Exception):
    """Another process runs the trigger now (or its workflow was deactivated)."""


class _Ended(Exception):
    """A trigger's `run` returned, which it should not."""


@dataclass(eq=False)
class _Slot:
    """One trigger of one active workflow, and the task running it."""

    workflow_id: str
    index: int
    key: str
    kind: str
    definition: dict[str, JSON]
    fingerprint: str
    trigger: Trigger | None = None
    idle: TriggerState = field(default_factory=TriggerState)
    task: "asyncio.Task[None] | None" = None
    holding: bool = False

    @property
    def state(self) -> TriggerState:
        return self.trigger.state if self.trigger is not None else self.idle

    @property
    def exclusive(self) -> bool:
        return self.kind in factory.EXCLUSIVE


def fingerprint(definition: dict[str, JSON]) -> str:
    """A short hash of a trigger definition: stored state belongs to one definition."""
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trigger_key(definition: dict[str, JSON], index: int) -> str:
    """A trigger's key: its `key`, else its position."""
    key = definition.get("key")
    return key if isinstance(key, str) and key else str(index)


class TriggerManager:
    """The triggers of active workflows in this process (see the module docstring)."""

    def __init__(
        self,
        runtime: "Runtime",
        *,
        clock: Clock | None = None,
        poll_s: float | None = None,
        sync_s: float | None = None,
    ):
        self.runtime = runtime
        self.clock: Clock = clock or runtime.engine.clock
        lease_s = runtime.settings.lease_seconds
        self.lease_s = lease_s
        self.poll_s = poll_s if poll_s is not None else min(1.0, lease_s / 3)
        self.sync_s = sync_s if sync_s is not None else runtime.settings.trigger_sync_seconds
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = asyncio.Lock()
        self._syncer: asyncio.Task[None] | None = None
        self.running = False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the triggers of every active workflow, and follow changes until `close`."""
        self.running = True
        await self.refresh()
        self._syncer = asyncio.create_task(self._follow(), name="triggers:sync")

    async def close(self) -> None:
        """Stop every trigger and give up this process's leases."""
        self.running = False
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
        async with self._lock:
            await self._stop(list(self._slots.values()))
            self._slots.clear()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.sync_s)
            try:
                await self.refresh()
            except Exception:
                log.warning("refreshing the triggers failed", exc_info=True)

    async def refresh(self) -> None:
        """Re-read the active workflows: rebuild the webhook index and (when running) start,
        stop or restart triggers whose workflow was activated, deactivated or changed."""
        async with self._lock:
            active = await self._active()
            self.runtime.webhooks.rebuild(active)
            if self.running:
                await self._sync(active)

    async def _active(self) -> list[tuple[str, Workflow]]:
        active: list[tuple[str, Workflow]] = []
        after: str | None = None
        db = self.runtime.db
        while page := await workflows.list_page(db, after=after, limit=500, active=True):
            active.extend((item.id, item.workflow) for item in page)
            after = page[-1].id
        return active

    async def _sync(self, active: list[tuple[str, Workflow]]) -> None:
        wanted: dict[tuple[str, str], _Slot] = {}
        for workflow_id, workflow in active:
            for index, definition in enumerate(workflow.triggers):
                kind = definition.get("type")
                if not isinstance(kind, str) or kind not in factory.BUILT:
                    continue
                key = trigger_key(definition, index)
                slot = _Slot(workflow_id, index, key, kind, definition, fingerprint(definition))
                wanted.setdefault((workflow_id, key), slot)
        stale = [
            slot
            for name, slot in self._slots.items()
            if name not in wanted or wanted[name].fingerprint != slot.fingerprint
        ]
        await self._stop(stale)
        for slot in stale:
            del self._slots[(slot.workflow_id, slot.key)]
        for name, slot in wanted.items():
            if name not in self._slots:
                self._slots[name] = slot
                slot.task = asyncio.create_task(
                    self._run(slot), name=f"trigger:{slot.workflow_id}:{slot.key}"
                )

    async def _stop(self, slots: list[_Slot]) -> None:
        tasks = [slot.task for slot in slots if slot.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for slot in slots:
            slot.state.status = "stopped"
            if slot.holding:
                await self._checkpoint(slot, slot.state)  # a cancelled checkpoint, redone
                slot.holding = False
                with contextlib.suppress(Exception):
                    await stored_triggers.release(
                        self.runtime.db, slot.workflow_id, slot.key, owner=self.runtime.instance
                    )

    # --- one trigger ----------------------------------------------------------------------

    async def _run(self, slot: _Slot) -> None:
        """Build and run one trigger until cancelled; failures are retried with backoff."""
        failures = 0
        while True:
            try:
                trigger = slot.trigger = slot.trigger or self._build(slot)
                if not slot.exclusive:
                    await trigger.run(self._fire(slot))
                    raise _Ended(f"the {slot.kind} trigger stopped by itself")
                if not await self._acquire(slot):
                    slot.state.status = "standby"
                    await self.clock.sleep(self.poll_s)
                    continue
                await self._hold(slot, trigger)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - a trigger's failure is shown, then retried
                failures += 1
                await self._failed(slot, exc)
                await self.clock.sleep(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])

    def _build(self, slot: _Slot) -> Trigger:
        return factory.build(
            slot.definition,
            workflow_id=slot.workflow_id,
            index=slot.index,
            clock=self.clock,
            checkpoint=lambda state: self._checkpoint(slot, state),
            secret=self.runtime.engine.secrets_value,
            files_root=self.runtime.settings.files_root,
        )

    async def _failed(self, slot: _Slot, exc: BaseException) -> None:
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        state = slot.state
        state.status = "failed"
        state.last_error = error_text(exc)
        state.last_error_at = self.clock.now()
        slot.trigger = None  # rebuilt at the next attempt (the folder may exist by then)
        slot.idle = state
        self._count_error(slot.kind)
        log.warning(
            "trigger %s of workflow %s failed: %s", slot.key, slot.workflow_id, state.last_error
        )
        if slot.holding:
            slot.holding = False
            with contextlib.suppress(Exception):
                await stored_triggers.release(
                    self.runtime.db, slot.workflow_id, slot.key, owner=self.runtime.instance
                )

    async def _acquire(self, slot: _Slot) -> bool:
        db, owner, now = self.runtime.db, self.runtime.instance, self.clock.now()
        current = await stored_triggers.get(db, slot.workflow_id, slot.key)
        dead = None
        if current is not None and current.lease_owner and current.lease_owner != owner:
            dead = current.lease_owner if leases.owner_is_dead(current.lease_owner) else None
        return await stored_triggers.acquire(
            db, slot.workflow_id, slot.key, owner=owner, until=self._until(), now=now,
            dead_owner=dead,
        )  # fmt: skip

    async def _hold(self, slot: _Slot, trigger: Trigger) -> None:
        """Run the trigger while this process holds its lease; returns when it is lost."""
        slot.holding = True
        stored = await stored_triggers.get(self.runtime.db, slot.workflow_id, slot.key)
        state = trigger.state
        if stored is not None and stored.cursor == {"definition": slot.fingerprint}:
            state.last_fire_at, state.fire_count = stored.last_fire_at, stored.fire_count
        else:
            state.last_fire_at, state.fire_count = None, 0
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._trigger(slot, trigger), name=f"run:{slot.key}")
                group.create_task(self._keep_lease(slot), name=f"lease:{slot.key}")
        except* _LeaseLost:
            slot.holding = False
            slot.state.status = "standby"

    async def _trigger(self, slot: _Slot, trigger: Trigger) -> None:
        await trigger.run(self._fire(slot))
        raise _Ended(f"the {slot.kind} trigger stopped by itself")

    async def _keep_lease(self, slot: _Slot) -> None:
        until = self._until()
        while True:
            await self.clock.sleep(self.lease_s / 3)
            try:
                renewed = await stored_triggers.renew(
                    self.runtime.db,
                    slot.workflow_id,
                    slot.key,
                    owner=self.runtime.instance,
                    until=self._until(),
                )
            except Unavailable:
                if self.clock.now() < until:
                    continue
                renewed = False
            if not renewed:
                raise _LeaseLost
            until = self._until()

    def _until(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.lease_s)

    async def _checkpoint(self, slot: _Slot, state: TriggerState) -> None:
        if not slot.holding:
            return
        try:
            await stored_triggers.save(
                self.runtime.db,
                slot.workflow_id,
                slot.key,
                owner=self.runtime.instance,
                next_fire_at=state.next_fire_at,
                last_fire_at=state.last_fire_at,
                fire_count=state.fire_count,
                last_error=state.last_error,
                cursor={"definition": slot.fingerprint},
            )
        except Exception:
            log.warning("storing the state of trigger %s failed", slot.key, exc_info=True)

    def _fire(self, slot: _Slot) -> Fire:
        runtime = self.runtime

        async def fire(payload: JSON, *, key: str | None = None) -> str:
            try:
                execution_id = await runtime.start_workflow(
                    slot.workflow_id, payload, mode=slot.kind, idempotency_key=key
                )
                if key is not None:
                    execution_id = await self._stored(key)
            except Exception:
                self._count_error(slot.kind)
                raise
            self._count_fire(slot.kind)
            return execution_id

        return fire

    async def _stored(self, key: str) -> str:
        """The id of the execution stored under `key`, once its row is written.

        `start_workflow` with a key returns before the background task has inserted the row
        (and may return an id that loses a race to another process's insert); a trigger
        records a due time as done, or acknowledges a message, only once the row exists.

        Raises:
            Unavailable: no row appeared (the insert failed: the database went away).
        """
        for delay in _STORED_POLL_S:
            found = await executions.find_by_idempotency_key(self.runtime.db, key)
            if found is not None:
                return found
            await asyncio.sleep(delay)
        raise Unavailable(f"the execution for {key} was not stored")

    def _count_fire(self, kind: str) -> None:
        if self.runtime.metrics is not None:
            self.runtime.metrics.trigger_fired(kind)

    def _count_error(self, kind: str) -> None:
        if self.runtime.metrics is not None:
            self.runtime.metrics.trigger_failed(kind)

    # --- what GET /api/triggers shows -----------------------------------------------------

    async def describe(self) -> list[TriggerInfo]:
        """Every trigger of the active workflows (manual ones aside), with its state: this
        process's for the triggers it runs, else the stored state of the process that does."""
        active = await self._active()
        stored = await stored_triggers.states(self.runtime.db, [wid for wid, _ in active])
        found = []
        for workflow_id, workflow in active:
            for index, definition in enumerate(workflow.triggers):
                kind = str(definition.get("type"))
                if kind == "manual":
                    continue
                key = trigger_key(definition, index)
                slot = self._slots.get((workflow_id, key))
                row = stored.get((workflow_id, key))
                current = row is not None and row.cursor == {"definition": fingerprint(definition)}
                found.append(self._info(workflow_id, index, key, kind, slot, row, current))
        return found

    def _info(
        self,
        workflow_id: str,
        index: int,
        key: str,
        kind: str,
        slot: _Slot | None,
        row: StoredTriggerState | None,
        current: bool,
    ) -> TriggerInfo:
        """`current`: the stored state belongs to the trigger's current definition."""
        if kind == "webhook":
            return TriggerInfo(workflow_id, index, key, kind, "running")
        owner = None
        if row is not None and row.lease_until is not None and row.lease_until >= self.clock.now():
            owner = row.lease_owner
        state = slot.state if slot is not None else TriggerState(status="stopped")
        mine = slot is not None and (slot.holding or not slot.exclusive)
        if not mine and row is not None and current:
            # another process runs it (or none does now): show what its runs stored
            return TriggerInfo(
                workflow_id, index, key, kind, state.status, row.fire_count, row.last_fire_at,
                row.next_fire_at, row.last_error or state.last_error, state.last_error_at, owner,
            )  # fmt: skip
        if mine and slot is not None:
            owner = self.runtime.instance if slot.exclusive else None
        return TriggerInfo(
            workflow_id, index, key, kind, state.status, state.fire_count, state.last_fire_at,
            state.next_fire_at, state.last_error, state.last_error_at, owner,
        )  # fmt: skip
