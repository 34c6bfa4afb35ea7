"""Pure data: pydantic models of the documents SPEC.md fixes (workflow, execution record)."""

from conv3n.model.execution import (
    ErrorInfo,
    ExecutionRecord,
    ExecutionStatus,
    NodeRecord,
    NodeStatus,
    WebhookResponse,
)
from conv3n.model.json import JSON
from conv3n.model.problems import Problem, format_path
from conv3n.model.workflow import (
    Connection,
    Node,
    RetryPolicy,
    Workflow,
    WorkflowSettings,
)

__all__ = [
    "JSON",
    "Connection",
    "ErrorInfo",
    "ExecutionRecord",
    "ExecutionStatus",
    "Node",
    "NodeRecord",
    "NodeStatus",
    "Problem",
    "RetryPolicy",
    "WebhookResponse",
    "Workflow",
    "WorkflowSettings",
    "format_path",
]
