"""Workflows read from files: `conv3n run FILE`, and std/subworkflow paths relative to it."""

import asyncio
from pathlib import Path
from typing import Any

from conv3n.compiler import (
    MAX_DOCUMENT_BYTES,
    Plan,
    compile_document,
    parse_text,
    parse_workflow,
)
from conv3n.errors import InvalidInput, WorkflowInvalid, WorkflowNotFound
from conv3n.model import JSON, Problem, Workflow
from conv3n.sdk import BlockRegistry
from conv3n.triggers import definitions


def read_text(path: Path) -> str:
    """A workflow file's text.

    Raises:
        WorkflowNotFound: the file does not exist.
        InvalidInput: it is a folder, too large, or cannot be read as UTF-8.
    """
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise InvalidInput(f"{path} is larger than {MAX_DOCUMENT_BYTES:,} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowNotFound(f"no workflow file at {path}", details={"path": str(path)}) from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a workflow file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def read_workflow(path: Path) -> Workflow:
    """Read and structurally validate a workflow file.

    Raises:
        WorkflowNotFound: the file does not exist.
        InvalidInput: it cannot be read.
        WorkflowInvalid: its text or structure is invalid.
    """
    return parse_workflow(read_text(path), name=path.name)


def compile_file(path: Path, registry: BlockRegistry) -> Plan:
    """Read, validate and compile a workflow file (its triggers too), reporting every problem
    at once.

    Raises:
        WorkflowNotFound: the file does not exist.
        InvalidInput: it cannot be read.
        WorkflowInvalid: every problem of the document, each with its place.
    """
    data = parse_text(read_text(path), name=path.name)
    triggers = data.get("triggers") if isinstance(data, dict) else None
    return definitions.checked(
        lambda: compile_document(data, registry, source=str(path.resolve())), triggers
    )


class FileWorkflows:
    """`WorkflowSource` over the file system: refs are paths relative to the calling workflow."""

    def __init__(self, registry: BlockRegistry):
        self._registry = registry
        self._cache: dict[Path, Plan] = {}

    async def load(self, ref: str, *, relative_to: str | None) -> Plan:
        """The compiled workflow at `ref` (relative to the parent's folder)."""
        base = Path(relative_to).parent if relative_to else Path.cwd()
        path = (base / ref).resolve()
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        try:
            plan = await asyncio.to_thread(compile_file, path, self._registry)
        except WorkflowInvalid as exc:
            problems = [Problem((), f"{ref}: {p}") for p in exc.problems]
            shown = "; ".join(str(p) for p in exc.problems[:3])
            more = f" (and {len(exc.problems) - 3} more)" if len(exc.problems) > 3 else ""
            raise WorkflowInvalid(
                problems, f"sub-workflow {ref} is invalid: {shown}{more}"
            ) from None
        self._cache[path] = plan
        return plan

    async def child_started(
        self, plan: Plan, input: JSON, *, execution_id: str, parent_id: str
    ) -> None:
        """Nothing to do: without storage a child lives only in its parent's run."""

    def child_finished(self, execution_id: str) -> None:
        """Nothing to do."""


def read_folder(folder: Path) -> list[tuple[Path, Workflow]]:
    """Every workflow file (.yaml, .yml, .json) of a folder, read and validated."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    return [(path, read_workflow(path)) for path in paths]


def write_folder(folder: Path, documents: list[tuple[str, dict[str, Any]]]) -> list[Path]:
    """Write documents as `<id>.yaml`, keys in the order written."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for workflow_id, document in documents:
        path = folder / f"{workflow_id}.yaml"
        path.write_text(
            yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        written.append(path)
    return written
