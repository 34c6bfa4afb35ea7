"""The composition root: settings, engine wiring and the use cases CLI and API share."""

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
    "compile_document",
    "compile_file",
    "describe_blocks",
    "make_engine",
    "read_workflow",
    "run_file",
    "run_plan",
    "validate_files",
]
