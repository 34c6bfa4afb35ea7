"""Time blocks: std/delay (std/wait arrives with storage and the server)."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model import JSON
from conv3n.sdk import Context, block

MAX_DELAY_MS = 31 * 24 * 3600 * 1000


class DelayConfig(BaseModel):
    """Configuration of std/delay: exactly one of `ms` or `until`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ms: int | None = Field(None, ge=0, le=MAX_DELAY_MS, description="How long to wait.")
    until: datetime | None = Field(None, description="ISO 8601 time to wait for (UTC if no zone).")

    @model_validator(mode="after")
    def _exactly_one(self) -> "DelayConfig":
        if (self.ms is None) == (self.until is None):
            raise ValueError("give exactly one of `ms` or `until`")
        return self


@block("delay")
async def delay(ctx: Context, config: DelayConfig) -> JSON:
    """Wait a while, then pass on `{waited_ms}`."""
    if config.ms is not None:
        wait_ms = float(config.ms)
    else:
        until = config.until or datetime.now(UTC)
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        wait_ms = max(0.0, (until - datetime.now(UTC)).total_seconds() * 1000)
    await ctx.sleep(wait_ms / 1000)
    return {"waited_ms": wait_ms}
