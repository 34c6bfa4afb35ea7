"""std/respond: the webhook's HTTP response (kept in the execution record)."""

from pydantic import BaseModel, ConfigDict, Field

from conv3n.blocks.std.http_request import HeaderName, HeaderValue
from conv3n.model import JSON, WebhookResponse
from conv3n.sdk import Context, block


class RespondConfig(BaseModel):
    """Configuration of std/respond."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: int = Field(200, ge=100, le=599, description="HTTP status code.")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Response headers (numbers are sent as text)."
    )
    body: JSON = Field(None, description="Response body: JSON, or a string sent as text.")


@block("respond")
async def respond(ctx: Context, config: RespondConfig) -> JSON:
    """Set the HTTP response of the webhook that started the execution; returns the body."""
    ctx.respond(WebhookResponse(status=config.status, headers=config.headers, body=config.body))
    return config.body
