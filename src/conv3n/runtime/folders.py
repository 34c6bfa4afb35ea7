"""Workflow folders: `conv3n workflows import/export` between files and storage."""

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conv3n.errors import WorkflowInvalid
from conv3n.model.stored import StoredWorkflow
from conv3n.runtime import files
from conv3n.storage import workflows

if TYPE_CHECKING:
    from conv3n.runtime.service import Runtime


async def import_folder(runtime: "Runtime", folder: Path) -> list[StoredWorkflow]:
    """Store every `*.yaml`/`*.yml`/`*.json` workflow of a folder (id from the document,
    else the file name); a file whose document is unchanged adds no version."""
    loaded = await asyncio.to_thread(files.read_folder, folder)
    stored = []
    for path, workflow in loaded:
        try:
            wid = workflow.id or path.stem
            stored.append(await runtime.save_workflow(workflow, workflow_id=wid))
        except WorkflowInvalid as exc:
            raise WorkflowInvalid(exc.problems, f"{path.name} is invalid") from None
    return stored


async def export_folder(runtime: "Runtime", folder: Path) -> list[Path]:
    """Write every stored workflow to `folder/<id>.yaml` (the exact documents stored)."""
    documents: list[tuple[str, dict[str, Any]]] = []
    after: str | None = None
    while page := await workflows.list_page(runtime.db, after=after, limit=200):
        documents.extend((item.id, item.workflow.to_document()) for item in page)
        after = page[-1].id
    return await asyncio.to_thread(files.write_folder, folder, documents)
