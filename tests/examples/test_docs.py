"""The workflows shown in docs/ are valid, and those that declare an output produce it."""

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from conv3n.compiler import Plan, compile_document, parse_text
from conv3n.model import ExecutionRecord
from conv3n.runtime import Settings, run_plan
from conv3n.sdk import BlockRegistry
from tests.conftest import ROOT
from tests.examples.test_examples import contains

DOCS = ROOT / "docs"
OUR_DOCS = ("workflows.md", "cli.md", "blocks.md")
REGISTRY = BlockRegistry.discover()
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def workflows_in(name: str) -> list[tuple[str, str]]:
    text = (DOCS / name).read_text(encoding="utf-8")
    blocks = [m.group(1) for m in FENCE.finditer(text) if "\nversion: 1\n" in f"\n{m.group(1)}"]
    return [(f"{name}#{i}", block) for i, block in enumerate(blocks)]


DOC_WORKFLOWS = [item for name in OUR_DOCS for item in workflows_in(name)]


def header(text: str, key: str) -> Any:
    for line in text.splitlines():
        if line.startswith(f"# {key}: "):
            return json.loads(line.removeprefix(f"# {key}: "))
    return None


def test_docs_show_workflows() -> None:
    assert len(workflows_in("workflows.md")) >= 10


def run(plan: Plan, input: Any) -> ExecutionRecord:
    """Run a plan on its own event loop, in a worker thread.

    Not a pytest-asyncio test: when a session's first test is synchronous, pytest-asyncio
    leaves an event loop behind that a later main-thread loop sends to the garbage collector,
    and `filterwarnings = error` turns its ResourceWarning into a failure of whatever test
    runs then. A loop in another thread leaves the main thread's alone.
    """
    coroutine = run_plan(plan, input, settings=Settings(), registry=REGISTRY)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


@pytest.mark.parametrize(("where", "text"), DOC_WORKFLOWS, ids=[w for w, _ in DOC_WORKFLOWS])
def test_workflow_in_the_docs_is_valid_and_gives_its_expected_output(where: str, text: str) -> None:
    plan = compile_document(parse_text(text), REGISTRY, source=str(DOCS / "doc.yaml"))
    expected = header(text, "expect")
    if expected is None and "# expect:" not in text:
        return
    record = run(plan, header(text, "input"))
    assert record.status.value == "success", record.error
    assert contains(record.output, expected), json.dumps(record.output, indent=2)


def block_sections() -> dict[str, str]:
    text = (DOCS / "blocks.md").read_text(encoding="utf-8")
    parts = re.split(r"^## `([a-z_]+/[a-z_]+)`", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_blocks_doc_describes_every_installed_block_and_config_field() -> None:
    sections = block_sections()
    for block_type, spec in REGISTRY:
        assert block_type in sections, f"docs/blocks.md lacks a `## `{block_type}`` section"
        fields = spec.json_schema().get("properties", {})
        missing = [f for f in fields if f"`{f}`" not in sections[block_type]]
        assert not missing, f"docs/blocks.md, {block_type}: document config fields {missing}"
        ports = spec.ports if spec.ports_from_config is None else ()
        for port in ports:
            assert f"`{port}`" in sections[block_type], f"{block_type}: port {port}"


def test_cli_doc_covers_every_command() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("run", "validate", "blocks", "schema"):
        assert f"## `conv3n {command}" in text, command
    for code in ("0", "1", "2"):
        assert f"| {code} |" in text


def test_docs_link_to_files_that_exist() -> None:
    for name in OUR_DOCS:
        text = (DOCS / name).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (DOCS / target).exists() or target == "expressions.md", f"{name}: {target}"


def test_examples_folder_is_where_the_docs_say() -> None:
    assert Path(ROOT / "examples" / "subworkflow_parent.yaml").exists()
