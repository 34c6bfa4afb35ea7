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
