"""`build(definition, ...)`: the running trigger of a trigger definition (cron, interval, file,
queue). Webhook and manual triggers are not built: the API serves webhooks itself."""

from collections.abc import Awaitable, Callable
from pathlib import Path

from conv3n.errors import InvalidInput
from conv3n.model import JSON
from conv3n.triggers import definitions
from conv3n.triggers.base import Checkpoint, Clock, SystemClock, Trigger, no_checkpoint

BUILT = frozenset({"cron", "interval", "file", "queue"})
"""Trigger types the manager runs as tasks."""
EXCLUSIVE = frozenset({"cron", "interval", "file"})
"""Trigger types one process at a time runs (under a lease); queue triggers run in every
process, as competing consumers."""


async def _no_secrets(name: str) -> str:
    raise InvalidInput(f"no secrets are available to look up {name!r}")


def build(
    definition: JSON,
    *,
    workflow_id: str,
    index: int,
    clock: Clock | None = None,
    checkpoint: Checkpoint = no_checkpoint,
    secret: Callable[[str], Awaitable[str]] = _no_secrets,
    files_root: Path | None = None,
) -> Trigger:
    """The trigger for `definition` (the workflow's `triggers[index]`).

    Raises:
        WorkflowInvalid: the definition is invalid (each problem at `triggers[index].…`).
        InvalidInput: it cannot run here (a missing folder, a
            webhook or manual trigger, which are not built).
    """
    parsed = definitions.parse(definition, index)
    key = definitions.key_of(parsed, index)
    clock = clock or SystemClock()
    if isinstance(parsed, definitions.CronTrigger):
        from conv3n.triggers import cron

        return cron.build(
            parsed, workflow_id=workflow_id, trigger_key=key, clock=clock, checkpoint=checkpoint
        )
    if isinstance(parsed, definitions.IntervalTrigger):
        from conv3n.triggers import interval

        return interval.build(
            parsed, workflow_id=workflow_id, trigger_key=key, clock=clock, checkpoint=checkpoint
        )
    if isinstance(parsed, definitions.FileTrigger):
        from conv3n.triggers import file

        try:
            return file.build(parsed, files_root=files_root, clock=clock, checkpoint=checkpoint)
        except InvalidInput as exc:
            raise InvalidInput(f"triggers[{index}].path: {exc.message}") from None
    if isinstance(parsed, definitions.QueueTrigger):
        from conv3n.triggers import queue

        own = definitions.queue_fields(definition)
        built: Trigger = queue.build(own, secret=secret, at=("triggers", index))
        return built
    kind = definition.get("type") if isinstance(definition, dict) else None
    raise InvalidInput(f"triggers[{index}]: {kind} triggers are not run as tasks")
