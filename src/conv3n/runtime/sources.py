"""`StoredWorkflows`: where std/subworkflow finds a workflow in a Runtime with storage."""

from typing import TYPE_CHECKING

from conv3n.compiler import Plan, compile_workflow
from conv3n.errors import WorkflowNotFound
from conv3n.runtime import files
from conv3n.storage import workflows

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
