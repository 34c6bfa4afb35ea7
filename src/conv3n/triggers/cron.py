"""Cron triggers: `expression` (5 fields, or 6 with seconds first) in an IANA `timezone`.

Due times are computed by croniter on aware datetimes in the trigger's zone, so DST is handled:
a time the clocks skip runs right after the jump, and in the hour that repeats when clocks go
back a fixed-time job runs once while an hourly or finer one runs in both copies (Vixie cron's
rule). Every due time is returned in UTC.
"""

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conv3n.errors import InvalidInput
from conv3n.triggers.base import Checkpoint, Clock, no_checkpoint
from conv3n.triggers.schedule import DEFAULT_MAX_CATCH_UP, CatchUp, ScheduledTrigger

ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MAX_LENGTH = 256


def zone(name: str) -> tzinfo:
    """The IANA time zone of this name.

    Raises:
        InvalidInput: no such zone.
    """
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from None


class CronSchedule:
    """The due times of a cron expression in a time zone.

    Raises:
        InvalidInput: the expression is malformed, out of range, or never matches; the time
            zone is unknown.
    """

    def __init__(self, expression: str, timezone: str = "UTC"):
        from croniter import croniter

        self.expression = " ".join(expression.split())
        self.zone = zone(timezone)
        fields = self.expression.split(" ")
        if len(expression) > _MAX_LENGTH:
            raise InvalidInput(f"a cron expression has at most {_MAX_LENGTH} characters")
        if self.expression.startswith("@"):
            if self.expression.lower() not in ALIASES:
                raise InvalidInput(
                    f"unknown cron alias {self.expression!r}: use one of {', '.join(ALIASES)}"
                )
            self._seconds = False
            self._wildcard = self.expression.lower() == "@hourly"
        elif len(fields) in (5, 6):
            self._seconds = len(fields) == 6
            minute, hour = fields[1:3] if self._seconds else fields[0:2]
            self._wildcard = minute.startswith("*") or hour.startswith("*")
        else:
            raise InvalidInput(
                f"a cron expression has 5 fields (minute hour day month weekday) or 6 (second "
                f"first); {self.expression!r} has {len(fields)}"
            )
        self._croniter = croniter
        try:
            self.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except InvalidInput:
            raise
        except Exception as exc:  # noqa: BLE001 - croniter raises several kinds for bad input
            raise InvalidInput(f"not a valid cron expression {self.expression!r}: {exc}") from None

    def _iter(self, moment: datetime) -> Any:
        return self._croniter(
            self.expression,
            moment.astimezone(self.zone),
            second_at_beginning=self._seconds,
        )

    def _repeated(self, moment: datetime) -> bool:
        """Whether `moment` is the second copy of a wall time (clocks went back) that a
        fixed-time expression already matched in the first copy (an expression with a
        wildcard minute or hour runs in both copies)."""
        if self._wildcard:
            return False
        local = moment.astimezone(self.zone)
        if local.fold == 0:
            return False
        return local.replace(fold=0).astimezone(UTC) != moment

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`, in UTC."""
        from croniter import CroniterBadDateError

        iterator = self._iter(moment)
        try:
            while True:
                found: datetime = iterator.get_next(datetime).astimezone(UTC)
                if not self._repeated(found):
                    return found
        except CroniterBadDateError:
            raise InvalidInput(f"the cron expression {self.expression!r} never matches") from None

    def previous(self, moment: datetime) -> datetime | None:
        """The last due time strictly before `moment`, in UTC (None if there is none)."""
        from croniter import CroniterBadDateError

        iterator = self._iter(moment)
        try:
            while True:
                found: datetime = iterator.get_prev(datetime).astimezone(UTC)
                if not self._repeated(found):
                    return found
        except CroniterBadDateError:
            return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last due time at or before `moment`, in UTC."""
        return self.previous(moment + timedelta(microseconds=1))


def build(
    definition: Any,
    *,
    workflow_id: str,
    trigger_key: str,
    clock: Clock,
    checkpoint: Checkpoint = no_checkpoint,
) -> ScheduledTrigger:
    """A cron trigger from its checked definition (`definitions.CronTrigger`)."""
    schedule = CronSchedule(definition.expression, definition.timezone)
    catch_up: CatchUp = definition.catch_up
    return ScheduledTrigger(
        "cron",
        schedule,
        workflow_id=workflow_id,
        trigger_key=trigger_key,
        catch_up=catch_up,
        max_catch_up=getattr(definition, "max_catch_up", DEFAULT_MAX_CATCH_UP),
        clock=clock,
        checkpoint=checkpoint,
    )
