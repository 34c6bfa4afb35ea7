"""`sources.LatestPlans`: which version of a stored workflow runs, across two processes.

A second `Database` on the same database stands in for another `conv3n serve` process that
changes a workflow. The time-to-live is 0 here, so every call finds its entry expired: it
gets the known version at once and refreshes it in the background (`settle()` waits).
"""

from collections.abc import AsyncIterator

import pytest

from conv3n.compiler import load_workflow
from conv3n.errors import WorkflowNotFound
from conv3n.runtime import sources
from conv3n.runtime.service import Runtime
from conv3n.storage import Database, workflows


def doc(marker: str):
    return load_workflow(
        {
            "version": 1,
            "id": "w",
            "nodes": [{"id": "a", "type": "std/transform", "config": {"template": marker}}],
        }
    )


@pytest.fixture
async def other(database_url: str, runtime: Runtime) -> AsyncIterator[Database]:
    """Another process's connection to the runtime's database."""
    database = Database(database_url)
    yield database
    await database.close()


async def elsewhere(runtime: Runtime) -> None:
    """Let the runtime's journal commit first: on one SQLite file in one process, its
    synchronous commit would wait for the other connection's lock while holding the loop."""
    await runtime.journal.flush()


@pytest.fixture(autouse=True)
def expire_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "LATEST_TTL_S", 0.0)


async def test_a_version_saved_elsewhere_is_served_after_one_background_refresh(
    runtime: Runtime, other: Database
):
    await runtime.save_workflow(doc("v1"))
    assert (await runtime.run_workflow("w")).output == "v1"
    await elsewhere(runtime)
    await workflows.upsert(other, "w", doc("v2"))

    # the expired entry answers at once; the refresh runs beside it
    assert (await runtime.run_workflow("w")).output == "v1"
    await runtime._plans.settle()
    assert (await runtime.run_workflow("w")).output == "v2"


async def test_a_workflow_deleted_elsewhere_is_not_found_after_the_refresh(
    runtime: Runtime, other: Database
):
    await runtime.save_workflow(doc("v1"))
    assert (await runtime.run_workflow("w")).output == "v1"
    await elsewhere(runtime)
    await workflows.remove(other, "w")

    assert (await runtime.run_workflow("w")).output == "v1"  # known until the refresh reads
    await runtime._plans.settle()
    with pytest.raises(WorkflowNotFound):
        await runtime.run_workflow("w")


async def test_a_read_that_ran_during_a_save_does_not_outlive_the_save(runtime: Runtime):
    await runtime.save_workflow(doc("v1"))
    assert (await runtime.run_workflow("w")).output == "v1"
    # the next call starts a refresh; the save below runs while that refresh reads
    await runtime.run_workflow("w")
    await runtime.save_workflow(doc("v2"))
    await runtime._plans.settle()

    assert (await runtime.run_workflow("w")).output == "v2"


async def test_many_callers_on_an_expired_entry_share_one_read(runtime: Runtime, monkeypatch):
    await runtime.save_workflow(doc("v1"))
    await runtime.run_workflow("w")
    reads = 0
    real_get = workflows.get

    async def counting_get(db, workflow_id):
        nonlocal reads
        reads += 1
        return await real_get(db, workflow_id)

    monkeypatch.setattr(workflows, "get", counting_get)
    plans = [await runtime._plans.latest("w") for _ in range(50)]
    await runtime._plans.settle()

    assert reads == 1
    assert {version for _, version in plans} == {1}


async def test_concurrent_first_callers_share_one_read_and_one_compile(
    runtime: Runtime, monkeypatch
):
    import asyncio

    await runtime.save_workflow(doc("v1"))
    runtime._plans.forget()
    reads = compiles = 0
    real_get, real_compile = workflows.get, runtime.compile

    async def counting_get(db, workflow_id):
        nonlocal reads
        reads += 1
        return await real_get(db, workflow_id)

    def counting_compile(workflow):
        nonlocal compiles
        compiles += 1
        return real_compile(workflow)

    monkeypatch.setattr(workflows, "get", counting_get)
    monkeypatch.setattr(runtime, "compile", counting_compile)
    plans = await asyncio.gather(*(runtime._plans.latest("w") for _ in range(30)))

    assert (reads, compiles) == (1, 1)
    assert len({id(plan) for plan, _ in plans}) == 1


async def test_concurrent_first_callers_of_a_missing_workflow_all_get_not_found(
    runtime: Runtime,
):
    import asyncio

    answers = await asyncio.gather(
        *(runtime._plans.latest("nope") for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(answer, WorkflowNotFound) for answer in answers)
    assert runtime._plans._loading == {}
