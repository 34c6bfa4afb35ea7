"""The use cases the CLI (and later the API) share: validate, run a file, describe blocks.

The composition root: the only code that knows every part and wires them together.
"""

from pathlib import Path
from typing import Any

from conv3n import compiler
from conv3n.compiler import Plan
from conv3n.engine import Engine, EngineOptions, Journal
from conv3n.errors import InvalidInput, NotFound, WorkflowInvalid
from conv3n.model import JSON, ExecutionRecord, Problem
from conv3n.runtime import blocks, files
from conv3n.runtime.settings import Settings
from conv3n.sdk import BlockRegistry
from conv3n.triggers import definitions


def make_engine(
    settings: Settings, registry: BlockRegistry, *, journal: Journal | None = None
) -> Engine:
    """An engine configured from settings, with file-based sub-workflows."""
    options = EngineOptions(
        env=settings.visible_env(),
        max_depth=settings.max_subworkflow_depth,
        files_root=settings.files_root,
        cache_dir=settings.cache_dir,
    )
    return Engine(journal=journal, options=options, workflows=files.FileWorkflows(registry))


def validate_files(paths: list[Path], registry: BlockRegistry) -> dict[Path, list[Problem]]:
    """Every problem of every file ({} entries are valid files)."""
    results: dict[Path, list[Problem]] = {}
    for path in paths:
        try:
            files.compile_file(path, registry)
            results[path] = []
        except WorkflowInvalid as exc:
            results[path] = exc.problems
        except (InvalidInput, NotFound) as exc:
            results[path] = [Problem((), exc.message)]
    return results


async def run_file(
    path: Path,
    input: JSON = None,
    *,
    settings: Settings | None = None,
    registry: BlockRegistry | None = None,
    journal: Journal | None = None,
) -> ExecutionRecord:
    """Compile and run a workflow file once, without storage (`conv3n run`)."""
    settings = settings or Settings.from_env()
    registry = registry or blocks.block_registry(settings)
    plan = files.compile_file(path, registry)
    return await run_plan(plan, input, settings=settings, registry=registry, journal=journal)


async def run_plan(
    plan: Plan,
    input: JSON = None,
    *,
    settings: Settings,
    registry: BlockRegistry,
    journal: Journal | None = None,
) -> ExecutionRecord:
    """Run a compiled plan on a fresh engine and close it afterwards."""
    async with make_engine(settings, registry, journal=journal) as engine:
        return await engine.execute(plan, input)


def compile_document(document: JSON, registry: BlockRegistry) -> Plan:
    """Validate and compile a workflow given as data (API bodies, tests), its triggers too.

    Raises:
        WorkflowInvalid: every problem of the document, each with its place.
    """
    triggers = document.get("triggers") if isinstance(document, dict) else None
    return definitions.checked(lambda: compiler.compile_document(document, registry), triggers)


def describe_blocks(registry: BlockRegistry) -> list[dict[str, Any]]:
    """Every block type with its description, ports and config JSON Schema (for
    `conv3n blocks --json`, GET /api/blocks and the editor)."""
    return [
        {
            "type": name,
            "description": spec.description,
            "ports": list(spec.ports),
            "dynamic_ports": spec.ports_from_config is not None,
            "config_schema": spec.json_schema(),
        }
        for name, spec in registry
    ]
