"""Time blocks: std/delay (std/wait arrives with storage and the server).

Also `now(ctx)`, the engine clock's time as blocks read it (tests fast-forward that clock).
"""

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

MAX_DELAY_MS = 31 * 24 * 3600 * 1000


def now(ctx: Context) -> datetime:
    """The engine clock's current UTC time (`$now`), not the wall clock's."""
    value = ctx.evaluate("$now")
    if isinstance(value, str):
        when = datetime.fromisoformat(value)
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.now(UTC)


class DelayConfig(BaseModel):
    """Configuration of std/delay: exactly one of `ms` or `until`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ms: int | None = Field(None, ge=0, le=MAX_DELAY_MS, description="How long to wait.")
    until: datetime | None = Field(
        None,
        description="ISO 8601 time to wait for (UTC if no zone); a past time does not wait.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "DelayConfig":
        if (self.ms is None) == (self.until is None):
            raise ValueError("give exactly one of `ms` or `until`")
        return self


@block("delay")
async def delay(ctx: Context, config: DelayConfig) -> JSON:
    """Wait a while, then pass on `{waited_ms}`. A long wait on a server parks the execution
    as `waiting` (it survives restarts) instead of holding memory."""
    if config.until is None:
        wait_ms: float = config.ms or 0
        until = now(ctx) + timedelta(milliseconds=wait_ms)
    else:
        until = config.until if config.until.tzinfo else config.until.replace(tzinfo=UTC)
        wait_ms = max(0.0, (until - now(ctx)).total_seconds() * 1000)
        if wait_ms > MAX_DELAY_MS:
            raise BlockError(
                f"config.until: {until.isoformat()} is more than {MAX_DELAY_MS:,} ms away",
                details={"until": until.isoformat(), "max_ms": MAX_DELAY_MS},
            )
    await ctx.sleep_until(until)
    return {"waited_ms": wait_ms}
