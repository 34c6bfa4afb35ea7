"""File triggers on real files: created, modified and deleted files start executions with
`{event, path}`, a pattern filters them, and a missing or outside folder is a clear failure."""

from pathlib import Path
from typing import Any

import httpx

from conv3n.runtime.service import Runtime
from tests.integration.triggers.conftest import eventually, inputs, workflow


async def _listed(client: httpx.AsyncClient, status: str) -> dict[str, Any] | None:
    items = (await client.get("/api/triggers")).json()["items"]
    return items[0] if items and items[0]["status"] == status else None


async def _events(runtime: Runtime, workflow_id: str, count: int) -> list[Any] | None:
    found = await inputs(runtime, workflow_id)
    return found if len(found) >= count else None


async def _start(runtime: Runtime, client: httpx.AsyncClient, definition: dict[str, Any]) -> None:
    document = workflow("files", definition)
    assert (await client.post("/api/workflows", json=document)).status_code == 201
    assert (await client.post("/api/workflows/files/activate")).status_code == 200
    await runtime.triggers.start()


async def test_created_modified_and_deleted_files_start_executions(
    runtime: Runtime, client: httpx.AsyncClient
):
    inbox = runtime.settings.files_root / "inbox"
    inbox.mkdir(parents=True)
    await _start(runtime, client, {"type": "file", "path": "inbox", "debounce_ms": 50})
    await eventually(lambda: _listed(client, "running"))

    target = inbox / "report.csv"
    target.write_text("a,b\n")
    created = (await eventually(lambda: _events(runtime, "files", 1)))[-1]
    assert created == {
        "event": "created",
        "path": str(inbox.resolve() / "report.csv"),
        "relative_path": "report.csv",
    }
    with target.open("a") as handle:
        handle.write("1,2\n")
    assert (await eventually(lambda: _events(runtime, "files", 2)))[-1]["event"] == "modified"
    target.unlink()
    assert (await eventually(lambda: _events(runtime, "files", 3)))[-1]["event"] == "deleted"
    listed = await eventually(lambda: _listed(client, "running"))
    assert listed["fire_count"] == 3


async def test_pattern_and_events_filter_the_changes(runtime: Runtime, client: httpx.AsyncClient):
    inbox = runtime.settings.files_root / "drop"
    (inbox / "sub").mkdir(parents=True)
    definition = {
        "type": "file",
        "path": "drop",
        "events": ["created"],
        "pattern": "*.csv",
        "debounce_ms": 50,
    }
    await _start(runtime, client, definition)
    await eventually(lambda: _listed(client, "running"))
    (inbox / "notes.txt").write_text("ignored: not a csv")
    (inbox / "sub" / "deep.csv").write_text("watched: sub-folders count")
    found = await eventually(lambda: _events(runtime, "files", 1))
    assert [(f["event"], f["relative_path"]) for f in found] == [("created", "sub/deep.csv")]
    (inbox / "sub" / "deep.csv").unlink()  # a deletion is not among the events
    (inbox / "last.csv").write_text("x")
    found = await eventually(lambda: _events(runtime, "files", 2))
    assert [f["relative_path"] for f in found] == ["sub/deep.csv", "last.csv"]


async def test_a_missing_folder_fails_with_an_error_naming_the_path(
    runtime: Runtime, client: httpx.AsyncClient
):
    await _start(runtime, client, {"type": "file", "path": "nowhere"})
    failed = await eventually(lambda: _listed(client, "failed"))
    assert failed["last_error"].startswith("triggers[0].path: the folder ")
    assert "does not exist" in failed["last_error"]


async def test_a_folder_outside_the_files_root_is_refused(
    runtime: Runtime, client: httpx.AsyncClient, tmp_path: Path
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    await _start(runtime, client, {"type": "file", "path": str(outside)})
    failed = await eventually(lambda: _listed(client, "failed"))
    assert "is outside the files root" in failed["last_error"]
    escape = {"type": "file", "path": "../../elsewhere"}
    document = workflow("files", escape)
    assert (await client.put("/api/workflows/files", json=document)).status_code == 200
    failed = await eventually(lambda: _escaped(client))
    assert "is outside the files root" in failed["last_error"]


async def _escaped(client: httpx.AsyncClient) -> dict[str, Any] | None:
    item = await _listed(client, "failed")
    return item if item and item["last_error"] and "../../" in item["last_error"] else None
