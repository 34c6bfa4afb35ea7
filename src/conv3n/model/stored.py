"""What storage returns besides execution records: stored workflows, execution summaries and
trigger states."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from conv3n.model.execution import ErrorInfo, ExecutionStatus
from conv3n.model.json import JSON
from conv3n.model.workflow import Workflow


class StoredWorkflow(BaseModel):
    """A saved workflow at one of its versions."""

    model_config = ConfigDict(extra="forbid")

    id: str
    version: int = Field(description="The version this document is (1 for the first save).")
    latest_version: int = Field(description="The newest version of this workflow.")
    active: bool = Field(description="Whether its triggers run.")
    created_at: datetime
    updated_at: datetime
    workflow: Workflow


class ExecutionSummary(BaseModel):
    """An execution as listings show it (no node data)."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    workflow_id: str | None
    workflow_version: int | None = None
    status: ExecutionStatus
    mode: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    error: ErrorInfo | None = None
    created_at: datetime
    parent_id: str | None = None
    """The execution that started this one (a sub-workflow's caller, a retry's original)."""


class StoredExecution(BaseModel):
    """What the runtime needs to resume or retry an execution."""

    model_config = ConfigDict(extra="forbid")

    execution_id: str
    workflow_id: str | None
    workflow_version: int | None
    status: ExecutionStatus
    mode: str
    input: object = None
    document: dict[str, object]
    source: str | None = None
    wake_at: datetime | None = None


class StoredTriggerState(BaseModel):
    """A trigger's state as stored in `trigger_state`: what its last run left, and who runs it.

    `cursor` is the trigger's own JSON (for scheduled triggers, the fingerprint of the
    definition the state belongs to: a changed schedule starts afresh).
    """

    model_config = ConfigDict(extra="forbid")

    workflow_id: str
    trigger_key: str
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    fire_count: int = 0
    cursor: JSON = None
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None
