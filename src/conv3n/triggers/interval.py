"""Interval triggers: `every_ms` milliseconds, at fixed multiples since the Unix epoch.

Aligning due times to the epoch (not to the start of a process) gives every process the same
due times, so processes sharing a database agree on them and each starts once.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from conv3n.errors import InvalidInput
from conv3n.triggers.base import Checkpoint, Clock, no_checkpoint
from conv3n.triggers.schedule import DEFAULT_MAX_CATCH_UP, CatchUp, ScheduledTrigger

MIN_EVERY_MS = 100
MAX_EVERY_MS = 366 * 86_400_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class IntervalSchedule:
    """Due times every `every_ms` milliseconds (multiples of it since the Unix epoch).

    Raises:
        InvalidInput: `every_ms` is below 100 ms or above a year.
    """

    def __init__(self, every_ms: int):
        if not MIN_EVERY_MS <= every_ms <= MAX_EVERY_MS:
            raise InvalidInput(
                f"every_ms must be between {MIN_EVERY_MS} and {MAX_EVERY_MS} (got {every_ms})"
            )
        self.every_ms = every_ms

    def _at(self, step: int) -> datetime:
        return EPOCH + step * self.every_ms * _MS

    def _steps(self, moment: datetime) -> tuple[int, bool]:
        """(whole steps since the epoch at or before `moment`, whether `moment` is one)."""
        elapsed = moment - EPOCH
        step = elapsed // (self.every_ms * _MS)
        return step, elapsed == step * self.every_ms * _MS

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`."""
        return self._at(self._steps(moment)[0] + 1)

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last due time at or before `moment`."""
        return self._at(self._steps(moment)[0])

    def previous(self, moment: datetime) -> datetime | None:
        """The last due time strictly before `moment`."""
        step, exact = self._steps(moment)
        return self._at(step - 1 if exact else step)


def build(
    definition: Any,
    *,
    workflow_id: str,
    trigger_key: str,
    clock: Clock,
    checkpoint: Checkpoint = no_checkpoint,
) -> ScheduledTrigger:
    """An interval trigger from its checked definition (`definitions.IntervalTrigger`)."""
    catch_up: CatchUp = definition.catch_up
    return ScheduledTrigger(
        "interval",
        IntervalSchedule(definition.every_ms),
        workflow_id=workflow_id,
        trigger_key=trigger_key,
        catch_up=catch_up,
        max_catch_up=getattr(definition, "max_catch_up", DEFAULT_MAX_CATCH_UP),
        clock=clock,
        checkpoint=checkpoint,
    )
