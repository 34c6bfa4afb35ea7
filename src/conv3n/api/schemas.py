"""Request and response bodies of the HTTP API (its OpenAPI surface)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conv3n.model import JSON


class RunRequest(BaseModel):
    """POST /api/run: an unsaved workflow and its input."""

    model_config = ConfigDict(extra="forbid")

    workflow: dict[str, Any] = Field(description="A workflow document (SPEC §1).")
    input: JSON = Field(None, description="The execution's $input.")


class WorkflowRunRequest(BaseModel):
    """POST /api/workflows/{id}/run."""

    model_config = ConfigDict(extra="forbid")

    input: JSON = Field(None, description="The execution's $input.")


class ResumeRequest(BaseModel):
    """POST /api/executions/{id}/resume."""

    model_config = ConfigDict(extra="forbid")

    payload: JSON = Field(None, description="Data for the waiting node (std/wait).")
    node: str | None = Field(
        None, max_length=128, description="Resume only this std/wait node (default: every one)."
    )


class SecretValue(BaseModel):
    """PUT /api/secrets/{name}."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=65536, description="The secret's value.")


class Accepted(BaseModel):
    """202: an execution was started and runs on."""

    execution_id: str


class WorkflowSummary(BaseModel):
    """A stored workflow in listings."""

    id: str
    name: str | None
    version: int
    active: bool


class Page(BaseModel):
    """A page of a listing; pass `next` back as the cursor for the next one."""

    items: list[Any]
    next: str | None = Field(None, description="Cursor of the next page, if any.")


class TriggerView(BaseModel):
    """One trigger of an active workflow (GET /api/triggers)."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str = Field(description="The workflow it starts.")
    index: int = Field(description="Its position in the workflow's `triggers`.")
    key: str = Field(description="Its key: the `key` it was given, else its position.")
    type: str = Field(description="webhook, cron, interval, queue or file.")
    status: str = Field(
        description="starting, running, reconnecting, standby (another process runs it), "
        "stopped (no server runs it) or failed (see last_error)."
    )
    fire_count: int = Field(
        description="Executions it started (scheduled and file triggers: "
        "since the workflow was activated)."
    )
    last_fire_at: str | None = Field(
        None, description="Its last start (scheduled triggers: the due time), ISO 8601 UTC."
    )
    next_fire_at: str | None = Field(None, description="Its next due time (scheduled triggers).")
    last_error: str | None = Field(None, description="Its most recent failure.")
    last_error_at: str | None = Field(None, description="When that failure happened.")
    owner: str | None = Field(
        None,
        description="The process running it (`host:pid:random`), for scheduled and file triggers.",
    )


class TriggerList(BaseModel):
    """GET /api/triggers."""

    model_config = ConfigDict(extra="forbid")

    items: list[TriggerView]
