"""The workflows shown in docs/triggers.md are valid, their triggers included."""

import re

import pytest

from conv3n.compiler import parse_text
from conv3n.runtime import compile_document
from conv3n.sdk import BlockRegistry
from tests.conftest import ROOT

TEXT = (ROOT / "docs" / "triggers.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
WORKFLOWS = [m.group(1) for m in FENCE.finditer(TEXT) if m.group(1).startswith("version: 1\n")]


def test_the_triggers_doc_shows_a_workflow_per_scheduled_and_file_trigger() -> None:
    kinds = {parse_text(text)["triggers"][0]["type"] for text in WORKFLOWS}
    assert kinds == {"cron", "interval", "file"}


@pytest.mark.parametrize("text", WORKFLOWS)
def test_a_workflow_in_the_triggers_doc_is_valid(text: str) -> None:
    compile_document(parse_text(text), BlockRegistry.discover())


def test_every_trigger_type_of_the_spec_is_documented() -> None:
    for kind in ("manual", "webhook", "cron", "interval", "queue", "file"):
        assert f"| `{kind}` |" in TEXT
