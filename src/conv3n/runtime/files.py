"""Workflows read from files: `conv3n run FILE`, and std/subworkflow paths relative to it."""

import asyncio
from pathlib import Path

from conv3n.compiler import Plan, compile_workflow, parse_workflow
from conv3n.errors import InvalidInput, WorkflowInvalid, WorkflowNotFound
from conv3n.model import Problem, Workflow
from conv3n.sdk import BlockRegistry


def read_workflow(path: Path) -> Workflow:
    """Read and structurally validate a workflow file.

    Raises:
        WorkflowNotFound: the file does not exist or cannot be read.
        WorkflowInvalid: its text or structure is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowNotFound(f"no workflow file at {path}", details={"path": str(path)}) from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a workflow file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    return parse_workflow(text, name=path.name)


def compile_file(path: Path, registry: BlockRegistry) -> Plan:
    """Read, validate and compile a workflow file."""
    return compile_workflow(read_workflow(path), registry, source=str(path.resolve()))


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
            raise WorkflowInvalid(problems, f"sub-workflow {ref} is invalid") from None
        self._cache[path] = plan
        return plan
