"""Time blocks: std/delay (wait a while) and std/wait (wait for a resume with a payload).

Also `now(ctx)`, the engine clock's time as blocks read it (tests fast-forward that clock).
"""

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

MAX_DELAY_MS = 31 * 24 * 3600 * 1000
MAX_WAIT_MS = 365 * 24 * 3600 * 1000


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


class WaitConfig(BaseModel):
    """Configuration of std/wait."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    wait_for: Literal["approval", "webhook"] = Field(
        "approval",
        alias="for",
        description="approval: a person resumes it (editor, CLI or API); webhook: another "
        "system calls `$execution.resume_url`. Either way the resume's payload is the data.",
    )
    timeout_ms: int | None = Field(
        None,
        gt=0,
        le=MAX_WAIT_MS,
        description="How long to wait for the resume (at most 365 days, also the default).",
    )
    on_timeout: Literal["fail", "continue"] = Field(
        "fail",
        description="fail: the node fails when the time is up; continue: its data is "
        "`{timed_out: true}`.",
    )


@block("wait")
async def wait(ctx: Context, config: WaitConfig) -> JSON:
    """Pause the execution until it is resumed (`POST /api/executions/{id}/resume` with a
    payload, or `$execution.resume_url`) and pass on the payload. The execution is parked
    durably as `waiting`: it holds no memory and survives restarts."""
    timeout_ms = config.timeout_ms or MAX_WAIT_MS
    deadline = now(ctx) + timedelta(milliseconds=timeout_ms)
    resumed, payload = await ctx.wait_for_resume(deadline)
    if resumed:
        return payload
    if config.on_timeout == "continue":
        return {"timed_out": True}
    raise BlockError(f"no resume came within {timeout_ms:,} ms", details={"timeout_ms": timeout_ms})
