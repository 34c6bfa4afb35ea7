"""Workflow document -> executable Plan, with every static check of SPEC §1. Pure: no I/O."""

from conv3n.compiler.document import (
    MAX_DOCUMENT_BYTES,
    check_structure,
    load_workflow,
    parse_text,
    parse_workflow,
)
from conv3n.compiler.graph import topological_order
from conv3n.compiler.plan import Plan, PlanNode, compile_document, compile_workflow

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "Plan",
    "PlanNode",
    "check_structure",
    "compile_document",
    "compile_workflow",
    "load_workflow",
    "parse_text",
    "parse_workflow",
    "topological_order",
]
