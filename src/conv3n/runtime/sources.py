"""Where a server's executions get their workflows: `StoredWorkflows` (std/subworkflow finds
stored ones, then files) and `Documents` (the stored copy every execution row refers to)."""

from typing import TYPE_CHECKING, Any

from conv3n.compiler import Plan, compile_workflow
from conv3n.engine.redact import Redactor
from conv3n.errors import WorkflowNotFound
from conv3n.runtime import files
from conv3n.storage import tables, workflows

if TYPE_CHECKING:
    from conv3n.runtime.service import Runtime


class StoredWorkflows:
    """`WorkflowSource` for std/subworkflow: a stored workflow id, else a file path."""

    def __init__(self, runtime: "Runtime"):
        self._runtime = runtime
        self._files = files.FileWorkflows(runtime.registry)

    async def load(self, ref: str, *, relative_to: str | None) -> Plan:
        """The stored workflow `ref` at its latest version, or the file `ref`."""
        try:
            stored = await workflows.get(self._runtime.db, ref)
        except WorkflowNotFound:
            return await self._files.load(ref, relative_to=relative_to)
        return compile_workflow(stored.workflow, self._runtime.registry)


class Documents:
    """Each plan's workflow document as stored JSON text and its hash, computed once per plan:
    every execution row refers to it (secret values masked)."""

    def __init__(self, redactor: Redactor, *, keep: int = 1000):
        self._redactor = redactor
        self._keep = keep
        self._cache: dict[int, tuple[Plan, dict[str, Any]]] = {}

    def fields(self, plan: Plan) -> dict[str, Any]:
        """`{"document": text, "document_hash": hash}` for an execution row of `plan`."""
        cached = self._cache.get(id(plan))
        if cached is None or cached[0] is not plan:
            if len(self._cache) > self._keep:
                self._cache.clear()
            text = tables.Encoded(self._redactor.text(tables.encode(plan.workflow.to_document())))
            fields = {"document": text, "document_hash": tables.document_hash(text)}
            cached = self._cache[id(plan)] = (plan, fields)
        return cached[1]
