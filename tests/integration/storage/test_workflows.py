"""Workflows keep immutable versions: a save never overwrites."""

import pytest

from conv3n.compiler import load_workflow
from conv3n.errors import Conflict, WorkflowNotFound
from conv3n.storage import workflows


def doc(message: str):
    return load_workflow(
        {
            "version": 1,
            "name": "Greeter",
            "nodes": [{"id": "a", "type": "std/transform", "config": {"template": message}}],
        }
    )


async def test_create_then_get_returns_version_one(db):
    stored = await workflows.create(db, "greet", doc("hi"))
    assert (stored.id, stored.version, stored.latest_version, stored.active) == (
        "greet",
        1,
        1,
        False,
    )
    assert stored.workflow.nodes[0].config == {"template": "hi"}
    assert stored.workflow.id == "greet"


async def test_create_twice_conflicts(db):
    await workflows.create(db, "greet", doc("hi"))
    with pytest.raises(Conflict):
        await workflows.create(db, "greet", doc("hi"))


async def test_save_adds_a_version_and_keeps_the_old_one(db):
    await workflows.create(db, "greet", doc("v1"))
    latest = await workflows.save_version(db, "greet", doc("v2"))
    assert latest.version == 2
    old = await workflows.get(db, "greet", version=1)
    assert old.workflow.nodes[0].config == {"template": "v1"}
    assert old.latest_version == 2
    assert await workflows.versions(db, "greet") == [1, 2]


async def test_upsert_of_an_unchanged_document_adds_no_version(db):
    await workflows.upsert(db, "greet", doc("same"))
    again = await workflows.upsert(db, "greet", doc("same"))
    assert again.version == 1
    changed = await workflows.upsert(db, "greet", doc("other"))
    assert changed.version == 2


async def test_missing_workflow_and_version_are_not_found(db):
    with pytest.raises(WorkflowNotFound):
        await workflows.get(db, "nope")
    await workflows.create(db, "greet", doc("hi"))
    with pytest.raises(WorkflowNotFound):
        await workflows.get(db, "greet", version=7)
    with pytest.raises(WorkflowNotFound):
        await workflows.save_version(db, "nope", doc("x"))


async def test_list_pages_by_id(db):
    for name in ["c", "a", "e", "b", "d"]:
        await workflows.create(db, name, doc(name))
    first = await workflows.list_page(db, limit=2)
    second = await workflows.list_page(db, limit=2, after=first[-1].id)
    rest = await workflows.list_page(db, limit=10, after=second[-1].id)
    assert [w.id for w in first + second + rest] == ["a", "b", "c", "d", "e"]
    assert await workflows.count(db) == 5


async def test_activate_and_filter_active(db):
    await workflows.create(db, "a", doc("a"))
    await workflows.create(db, "b", doc("b"))
    await workflows.set_active(db, "b", True)
    assert [w.id for w in await workflows.list_page(db, active=True)] == ["b"]
    with pytest.raises(WorkflowNotFound):
        await workflows.set_active(db, "zzz", True)


async def test_remove_deletes_every_version(db):
    await workflows.create(db, "a", doc("a"))
    await workflows.save_version(db, "a", doc("b"))
    await workflows.remove(db, "a")
    assert await workflows.versions(db, "a") == []
    with pytest.raises(WorkflowNotFound):
        await workflows.remove(db, "a")


async def test_unicode_and_large_documents_round_trip(db):
    text = "héllo ✓ " * 20_000
    await workflows.create(db, "big", doc(text))
    assert (await workflows.get(db, "big")).workflow.nodes[0].config["template"] == text
