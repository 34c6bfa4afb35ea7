"""The engine tells its WorkflowSource about every child execution (storage stores them)."""

import json
from pathlib import Path
from typing import Any

from conv3n.compiler import Plan, compile_workflow, load_workflow
from conv3n.engine import Engine
from conv3n.model import JSON, ExecutionStatus
from conv3n.runtime.files import FileWorkflows
from tests.integration.engine.helpers import RecordingJournal, registry


class RecordingSource(FileWorkflows):
    """File workflows that log the child hooks into the journal's event list."""

    def __init__(self, journal: RecordingJournal):
        super().__init__(registry())
        self.journal = journal

    async def child_started(
        self, plan: Plan, input: JSON, *, execution_id: str, parent_id: str
    ) -> None:
        self.journal.events.append(("child_started", execution_id, None, (parent_id, input)))

    def child_finished(self, execution_id: str) -> None:
        self.journal.events.append(("child_finished", execution_id, None, None))


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"version": 1, **document}), encoding="utf-8")
    return path


async def test_children_are_announced_before_they_start_and_after_they_end(tmp_path: Path):
    child = {
        "nodes": [{"id": "t", "type": "std/transform", "config": {"template": "{{ $input }}"}}]
    }
    _write(tmp_path / "child.json", child)
    call = {"id": "call", "type": "std/subworkflow", "config": {"workflow": "child.json"}}
    body = {"nodes": [{**call, "config": {"workflow": "child.json", "input": "{{ $item }}"}}]}
    parent = _write(
        tmp_path / "main.json",
        {
            "nodes": [
                {"id": "each", "type": "std/loop", "config": {"items": [1, 2], "body": body}},
                {
                    "id": "spawn",
                    "type": "std/subworkflow",
                    "config": {"workflow": "child.json", "input": 3, "wait": False},
                },
            ]
        },
    )
    journal = RecordingJournal()
    plan = compile_workflow(
        load_workflow(json.loads(parent.read_text())), registry(), source=str(parent)
    )
    async with Engine(journal=journal, workflows=RecordingSource(journal)) as engine:
        record = await engine.execute(plan, None, execution_id="top")
    assert record.status is ExecutionStatus.SUCCESS, record.error
    announced = {e[1]: e[3] for e in journal.events if e[0] == "child_started"}
    # loop-body calls name the execution, not the body, as their parent
    assert sorted(announced.values()) == [("top", 1), ("top", 2), ("top", 3)]
    for child_id in announced:
        kinds = [event for event, execution, _, _ in journal.events if execution == child_id]
        assert kinds[0] == "child_started"
        assert kinds[1] == "execution_started"
        assert kinds[-2:] == ["execution_finished", "child_finished"]
        assert journal.finished[child_id].mode == "subworkflow"


async def test_a_child_that_fails_to_load_is_never_announced(tmp_path: Path):
    parent = _write(
        tmp_path / "main.json",
        {"nodes": [{"id": "c", "type": "std/subworkflow", "config": {"workflow": "gone.json"}}]},
    )
    journal = RecordingJournal()
    plan = compile_workflow(
        load_workflow(json.loads(parent.read_text())), registry(), source=str(parent)
    )
    async with Engine(journal=journal, workflows=RecordingSource(journal)) as engine:
        record = await engine.execute(plan, None)
    assert record.status is ExecutionStatus.ERROR
    assert [e for e in journal.events if e[0].startswith("child_")] == []
