"""`StoredWorkflows`: where std/subworkflow finds workflows when conv3n has storage.

Created by `Runtime` as its engine's `WorkflowSource`; the engine calls it to load a child
workflow and when a child execution starts and ends.
"""

from typing import TYPE_CHECKING

from conv3n.compiler import Plan
from conv3n.errors import WorkflowNotFound
from conv3n.model import JSON
from conv3n.runtime import files

if TYPE_CHECKING:
    from conv3n.runtime import service


class StoredWorkflows:
    """`WorkflowSource` for std/subworkflow: a stored workflow id, else a file path.

    Each child execution is stored as its own execution (`mode: subworkflow`, `parent_id`
    the calling execution, `workflow_version` the version it ran), leased by this process
    while it runs, exactly as `Runtime.execute` stores a top-level one.
    """

    def __init__(self, runtime: "service.Runtime"):
        self._runtime = runtime
        self._files = files.FileWorkflows(runtime.registry)
        self._versions: dict[int, tuple[Plan, int]] = {}

    async def load(self, ref: str, *, relative_to: str | None) -> Plan:
        """The stored workflow `ref` at its latest version, or the file `ref`.

        Raises:
            WorkflowNotFound: neither a stored workflow nor a file has this name.
        """
        try:
            plan, version = await self._runtime._latest_plan(ref)
        except WorkflowNotFound:
            try:
                return await self._files.load(ref, relative_to=relative_to)
            except WorkflowNotFound:
                raise WorkflowNotFound(
                    f"no stored workflow or workflow file is named {ref!r}",
                    details={"workflow": ref},
                ) from None
        if len(self._versions) >= 1000:
            self._versions.clear()
        self._versions[id(plan)] = (plan, version)
        return plan

    async def child_started(
        self, plan: Plan, input: JSON, *, execution_id: str, parent_id: str
    ) -> None:
        """Queue the child's row (committed with the journal's next batch, before its nodes)."""
        known = self._versions.get(id(plan))
        version = known[1] if known is not None and known[0] is plan else None
        row = self._runtime._new_row(
            plan,
            input,
            execution_id=execution_id,
            mode="subworkflow",
            workflow_version=version,
            parent_id=parent_id,
        )
        self._runtime.journal.execution_created(row)
        self._runtime._mine.add(execution_id)

    def child_finished(self, execution_id: str) -> None:
        """Stop renewing the child's lease."""
        self._runtime._mine.discard(execution_id)
