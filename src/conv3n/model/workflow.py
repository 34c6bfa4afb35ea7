"""The workflow document of SPEC §1 as pydantic models.

Structural rules (field types, id patterns, unknown keys) live here; graph and block rules
(cycles, ports, config schemas, expressions) live in `conv3n.compiler`.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model.json import JSON

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
BLOCK_TYPE_PATTERN = r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$"

OnError = Literal["fail", "continue", "route"]


class RetryPolicy(BaseModel):
    """How a failed node is attempted again before `on_error` applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(1, ge=1, le=100, description="Attempts in all, the first included.")
    backoff_ms: int = Field(500, ge=0, le=3_600_000, description="Delay before the 2nd attempt.")
    factor: float = Field(2.0, ge=1.0, le=10.0, description="Growth of each further delay.")
    max_backoff_ms: int = Field(30_000, ge=0, le=86_400_000, description="Longest single delay.")
    jitter: float = Field(
        0.1, ge=0.0, le=1.0, description="Random share (0..1) taken off each delay."
    )


class WorkflowSettings(BaseModel):
    """Execution-wide settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_ms: int | None = Field(None, gt=0, description="Limit for the whole execution.")
    concurrency: int | None = Field(
        None, ge=1, description="Most executions of this workflow running at once (server)."
    )
    error_workflow: str | None = Field(
        None, description="Workflow run with the failed execution as $input when one fails."
    )
    max_parallel_nodes: int | None = Field(
        None, ge=1, description="Most nodes of one execution running at once (default: unbounded)."
    )


class Node(BaseModel):
    """One block instance in the graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=NODE_ID_PATTERN, max_length=128)] = Field(
        description="Unique id, used in expressions as $node.ID."
    )
    type: Annotated[str, Field(pattern=BLOCK_TYPE_PATTERN, max_length=128)] = Field(
        description="Registered block type, e.g. std/http_request."
    )
    name: str | None = Field(None, max_length=256, description="Display name.")
    description: str | None = Field(None, description="Free text for humans.")
    config: dict[str, JSON] = Field(
        default_factory=dict, description="Block configuration; strings may hold {{ expressions }}."
    )
    retry: RetryPolicy | None = Field(None, description="Retries before on_error applies.")
    timeout_ms: int | None = Field(None, gt=0, le=86_400_000, description="Limit of one attempt.")
    on_error: OnError = Field("fail", description="fail | continue | route (to the `error` port).")
    position: tuple[float, float] | None = Field(None, description="Editor position [x, y].")


class Connection(BaseModel):
    """An edge from one node's output port to another node."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str = Field(alias="from", description="Id of the node the data comes from.")
    port: str = Field("main", min_length=1, description="Which output of `from`.")
    to: str = Field(description="Id of the node that receives it.")

    def to_json(self) -> dict[str, str]:
        """The document form (`from` rather than the Python name `source`)."""
        if "port" not in self.model_fields_set:
            return {"from": self.source, "to": self.to}
        return {"from": self.source, "port": self.port, "to": self.to}


class Workflow(BaseModel):
    """A workflow document (SPEC §1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(description="Format version; 1 is the only one so far.")
    id: Annotated[str, Field(pattern=WORKFLOW_ID_PATTERN, max_length=128)] | None = Field(
        None, description="Slug; the server assigns one if absent."
    )
    name: str | None = Field(None, max_length=256)
    description: str | None = None
    settings: WorkflowSettings = Field(default_factory=WorkflowSettings)
    triggers: list[dict[str, JSON]] = Field(
        default_factory=list, description="Trigger definitions (SPEC §5); checked by the server."
    )
    nodes: list[Node] = Field(default_factory=list)
    connections: list[Connection] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _reject_non_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("a workflow must be a mapping with version, nodes and connections")
        return value

    def node(self, node_id: str) -> Node:
        """The node with this id (KeyError if absent)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_document(self) -> dict[str, JSON]:
        """The JSON/YAML document form, without defaults the author did not write."""
        doc: dict[str, JSON] = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        doc["version"] = self.version
        if "connections" in self.model_fields_set:
            doc["connections"] = [c.to_json() for c in self.connections]
        return doc
