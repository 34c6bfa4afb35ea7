"""The composition root: settings, engine wiring and the use cases CLI and API share."""

from conv3n.runtime.blocks import block_registry, discover_blocks
from conv3n.runtime.files import FileWorkflows, compile_file, read_workflow
from conv3n.runtime.runtime import (
    compile_document,
    describe_blocks,
    make_engine,
    run_file,
    run_plan,
    validate_files,
)
from conv3n.runtime.settings import Settings

__all__ = [
    "FileWorkflows",
    "Settings",
    "block_registry",
    "compile_document",
    "compile_file",
    "describe_blocks",
    "discover_blocks",
    "make_engine",
    "read_workflow",
    "run_file",
    "run_plan",
    "validate_files",
]
