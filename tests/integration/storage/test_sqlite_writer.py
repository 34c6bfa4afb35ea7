"""The SQLite writer process: batches commit outside the server, survive the child's death,
wait out another process's lock, and a refused batch never blocks the ones after it."""

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conv3n.compiler import load_workflow
from conv3n.errors import InvalidInput
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.storage import sqlite_process
from conv3n.storage.sqlite_process import ProcessWriter
from conv3n.storage.statements import Statement

DOC = {
    "version": 1,
    "id": "writer",
    "nodes": [
        {"id": "a", "type": "std/noop"},
        {"id": "b", "type": "std/transform", "config": {"template": {"i": "{{ $input.i }}"}}},
    ],
    "connections": [{"from": "a", "to": "b"}],
}


def stored(path: Path) -> list[tuple[str, str | None]]:
    """(status, nodes JSON) of every execution in the database file."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT status, nodes FROM executions ORDER BY created_at").fetchall()


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path), **env})


async def test_results_are_committed_by_a_process_of_their_own(tmp_path):
    async with Runtime(settings(tmp_path)) as rt:
        pid = rt.journal.writer_pid
        assert pid is not None
        assert pid != os.getpid()
        plan = rt.compile(load_workflow(DOC))
        await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(100)))
        await rt.journal.flush()
        rows = stored(tmp_path / "conv3n.db")
    assert len(rows) == 100
    assert all(status == "success" and nodes and '"b"' in nodes for status, nodes in rows)
    with pytest.raises(ProcessLookupError):  # closing the runtime stopped it
        os.kill(pid, 0)


async def test_a_killed_writer_process_is_started_again_and_nothing_is_lost(tmp_path):
    async with Runtime(settings(tmp_path)) as rt:
        plan = rt.compile(load_workflow(DOC))
        first = rt.journal.writer_pid
        assert first is not None
        await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(50)))
        os.kill(first, signal.SIGKILL)  # with batches possibly still in the pipe
        await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(50, 120)))
        async with asyncio.timeout(30):
            await rt.journal.flush()
        second = rt.journal.writer_pid
    assert second is not None
    assert second != first
    rows = stored(tmp_path / "conv3n.db")
    assert len(rows) == 120
    assert {status for status, _ in rows} == {"success"}


async def test_batches_wait_while_another_process_holds_the_write_lock(tmp_path):
    async with Runtime(settings(tmp_path)) as rt:
        plan = rt.compile(load_workflow(DOC))
        other = sqlite3.connect(tmp_path / "conv3n.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        try:
            await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(20)))
            flushed = asyncio.create_task(rt.journal.flush())
            done, _ = await asyncio.wait([flushed], timeout=0.3)
            assert not done  # the batch waits for the lock; nothing fails, nothing is lost
        finally:
            other.execute("ROLLBACK")
            other.close()
        async with asyncio.timeout(30):
            await flushed
    assert len(stored(tmp_path / "conv3n.db")) == 20


async def test_the_inline_writer_stores_the_same_on_the_event_loops_thread(tmp_path):
    async with Runtime(settings(tmp_path, CONV3N_SQLITE_WRITER="inline")) as rt:
        assert rt.journal.writer_pid is None
        plan = rt.compile(load_workflow(DOC))
        await asyncio.gather(*(rt.execute(plan, {"i": i}) for i in range(100)))
        await rt.journal.flush()
    assert len(stored(tmp_path / "conv3n.db")) == 100


async def test_a_writer_process_that_cannot_start_falls_back_to_inline_writes(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(sqlite_process, "CHILD", tmp_path / "missing.py")
    with caplog.at_level(logging.WARNING, logger="conv3n.storage"):
        async with Runtime(settings(tmp_path)) as rt:
            assert rt.journal.writer_pid is None
            plan = rt.compile(load_workflow(DOC))
            await rt.execute(plan, {"i": 1})
            await rt.journal.flush()
    assert "event loop's thread instead" in caplog.text
    assert len(stored(tmp_path / "conv3n.db")) == 1


def test_an_invalid_writer_setting_names_the_variable(tmp_path):
    with pytest.raises(InvalidInput, match="CONV3N_SQLITE_WRITER"):
        settings(tmp_path, CONV3N_SQLITE_WRITER="thread")


# --- the ProcessWriter on its own -------------------------------------------------------------

INSERT = Statement(
    "INSERT INTO t (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING",
    ("k", "v"),
    positional=True,
    rows_sql=("INSERT INTO t (k, v) VALUES ", "(?, ?)", " ON CONFLICT DO NOTHING"),
)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    return path


def rows(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()


async def wait_for(committed: list[int], count: int) -> None:
    async with asyncio.timeout(30):
        while not committed or committed[-1] < count:
            await asyncio.sleep(0.005)


async def test_a_refused_batch_is_dropped_and_logged_and_later_batches_commit(table, caplog):
    committed: list[int] = []
    writer = ProcessWriter(str(table), committed.append)
    await writer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="conv3n.storage"):
            writer.send([(INSERT, [{"k": 1, "v": "one"}, {"k": 2, "v": "two"}])], 2)
            writer.send([(INSERT, [{"k": 3, "v": None}])], 3)  # NOT NULL: refused for good
            writer.send([(INSERT, [{"k": 4, "v": "four"}])], 4)
            await wait_for(committed, 4)
    finally:
        await writer.close()
    assert committed == [2, 3, 4]
    assert "refused" in caplog.text
    assert "NOT NULL" in caplog.text
    assert rows(table) == [(1, "one"), (2, "two"), (4, "four")]


async def test_unacknowledged_batches_are_sent_again_in_order_to_a_new_child(table):
    committed: list[int] = []
    writer = ProcessWriter(str(table), committed.append)
    await writer.start()
    try:
        for k in range(1, 201):
            writer.send([(INSERT, [{"k": k, "v": f"v{k}"}])], k)
            if k == 100:
                assert writer.pid is not None
                os.kill(writer.pid, signal.SIGKILL)
        await wait_for(committed, 200)
    finally:
        await writer.close()
    assert writer.restarts >= 1
    assert committed == sorted(committed)
    assert committed[-1] == 200
    assert rows(table) == [(k, f"v{k}") for k in range(1, 201)]


async def test_huge_and_hostile_values_go_through_the_pipe_unchanged(table):
    values = ["x" * 3_000_000, "line\nbreak", "quote ' and \" and \\", "nul \x00 byte", "é ☃ 𝄞"]
    committed: list[int] = []
    writer = ProcessWriter(str(table), committed.append)
    await writer.start()
    try:
        writer.send([(INSERT, [{"k": i, "v": v} for i, v in enumerate(values)])], 1)
        await wait_for(committed, 1)
    finally:
        await writer.close()
    assert rows(table) == list(enumerate(values))


def test_the_writer_process_exits_when_the_server_is_killed(tmp_path):
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from conv3n.runtime import Settings
        from conv3n.runtime.service import Runtime

        async def main():
            async with Runtime(Settings.from_env({{"CONV3N_DATA_DIR": {str(tmp_path)!r}}})) as rt:
                print(rt.journal.writer_pid, flush=True)
                await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    # the child sees the end of its stdin and exits by itself (it is not our child: poll)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not running(child):
            return
        time.sleep(0.01)
    pytest.fail(f"the writer process {child} outlived the server")


def running(pid: int) -> bool:
    """Whether a process still runs (a zombie has exited), without reaping it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone before or while it was read
        return False


async def test_a_batch_the_child_keeps_dying_on_is_dropped_after_three_deaths(table, caplog):
    committed: list[int] = []
    writer = ProcessWriter(str(table), committed.append)
    await writer.start()
    lock = sqlite3.connect(table, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # the batch cannot commit: it stays the oldest unanswered
    try:
        writer.send([(INSERT, [{"k": 1, "v": "one"}])], 1)
        with caplog.at_level(logging.ERROR, logger="conv3n.storage"):
            for deaths in range(1, sqlite_process.MAX_DEATHS + 1):
                pid = writer.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                async with asyncio.timeout(30):
                    while writer.pid in (None, pid) and not committed:
                        await asyncio.sleep(0.005)
                assert bool(committed) == (deaths == sqlite_process.MAX_DEATHS)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    try:
        writer.send([(INSERT, [{"k": 2, "v": "two"}])], 2)
        await wait_for(committed, 2)
    finally:
        await writer.close()
    assert committed == [1, 2]
    assert "died 3 times" in caplog.text
    assert rows(table) == [(2, "two")]


async def test_closing_while_a_new_child_cannot_start_returns(table, monkeypatch):
    writer = ProcessWriter(str(table), lambda count: None)
    await writer.start()
    pid = writer.pid
    assert pid is not None
    monkeypatch.setattr(sqlite_process, "CHILD", table.parent / "missing.py")
    os.kill(pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while running(pid):  # the reader is now trying, and failing, to start another
            await asyncio.sleep(0.005)
        await writer.close()
    assert writer.pid is None


async def test_a_start_cancelled_half_way_kills_the_child_and_closes_its_pipe(table, monkeypatch):
    silent = table.parent / "silent.py"
    silent.write_text("import time\ntime.sleep(60)\n")  # never says "ready"
    spawned: list[asyncio.subprocess.Process] = []
    started = asyncio.Event()
    spawn = asyncio.create_subprocess_exec

    async def recording(*args, **kwargs):
        process = await spawn(*args, **kwargs)
        spawned.append(process)
        started.set()
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    monkeypatch.setattr(sqlite_process, "CHILD", silent)
    starting = asyncio.create_task(ProcessWriter(str(table), lambda count: None).start())
    await started.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    [process] = spawned
    assert process.stdin is not None
    assert process.stdin.is_closing()  # left open, it would warn once the loop is gone
    async with asyncio.timeout(10):
        assert await process.wait() == -signal.SIGKILL


def test_answers_the_server_does_not_understand_are_logged_not_fatal(tmp_path, caplog):
    committed: list[int] = []
    writer = ProcessWriter(str(tmp_path / "t.db"), committed.append)
    with caplog.at_level(logging.WARNING, logger="conv3n.storage"):
        for line in ("ok", "ok twelve", "refused -3 nope", "", "\x00garbage", "ok 7"):
            writer._handle(line)  # the reader's parser of the child's lines
    assert committed == [7]
    assert caplog.text.count("the SQLite writer process said") == 5


def test_executions_finish_while_the_writer_is_stopped_and_survive_the_servers_death(tmp_path):
    # Handed to the writer process, a batch is the writer's: executions do not wait for its
    # acknowledgement (below MAX_UNACKNOWLEDGED), and what is in its pipe is committed even
    # when the server is killed before any acknowledgement came back.
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from conv3n.compiler import load_workflow
        from conv3n.runtime import Settings
        from conv3n.runtime.service import Runtime

        async def main():
            async with Runtime(Settings.from_env({{"CONV3N_DATA_DIR": {str(tmp_path)!r}}})) as rt:
                plan = rt.compile(load_workflow({DOC!r}))
                print(rt.journal.writer_pid, flush=True)
                await asyncio.to_thread(sys.stdin.readline)  # the writer is stopped now
                records = await asyncio.gather(*(rt.execute(plan, {{"i": i}}) for i in range(300)))
                assert all(r.status.value == "success" for r in records)
                while rt.journal.gathering:  # the last batch goes after its window
                    await asyncio.sleep(0.001)
                print("handed", flush=True)
                await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None
    assert server.stdout is not None
    child = int(server.stdout.readline())
    try:
        os.kill(child, signal.SIGSTOP)
        server.stdin.write("go\n")
        server.stdin.flush()
        assert server.stdout.readline() == "handed\n"
    finally:
        server.kill()
        server.wait()
        server.stdin.close()
        server.stdout.close()
        os.kill(child, signal.SIGCONT)
    deadline = time.monotonic() + 20
    while running(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not running(child), "the writer drains its pipe and exits"
    rows = stored(tmp_path / "conv3n.db")
    assert len(rows) == 300
    assert {status for status, _ in rows} == {"success"}


def test_past_the_unacknowledged_bound_finishing_executions_wait_for_the_writer(tmp_path):
    # in a process of its own: 50 executions with the bound at 40 events (~5 an execution)
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from conv3n.compiler import load_workflow
        from conv3n.runtime import Settings
        from conv3n.runtime.service import Runtime
        from conv3n.storage import journal

        journal.MAX_UNACKNOWLEDGED = 40

        async def main():
            async with Runtime(Settings.from_env({{"CONV3N_DATA_DIR": {str(tmp_path)!r}}})) as rt:
                plan = rt.compile(load_workflow({DOC!r}))
                pid = rt.journal.writer_pid
                os.kill(pid, signal.SIGSTOP)
                try:
                    runs = [asyncio.ensure_future(rt.execute(plan, {{"i": i}})) for i in range(50)]
                    done, waiting = await asyncio.wait(runs, timeout=0.5)
                finally:
                    os.kill(pid, signal.SIGCONT)
                records = await asyncio.gather(*runs)
                await rt.journal.flush()
                print(len(done), len(waiting), sorted({{r.status.value for r in records}}))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    finished, waiting, statuses = done.stdout.split(" ", 2)
    # a few finish, the others wait for acknowledgements until the writer goes on
    assert int(waiting) > 0, "executions went on past the bound"
    assert int(finished) + int(waiting) == 50
    assert statuses.strip() == "['success']"
    assert len(stored(tmp_path / "conv3n.db")) == 50


@pytest.mark.parametrize("run", ["asyncio.run", "uvloop.run"])
def test_the_channel_to_the_writer_holds_a_mebibyte(table, run):
    # 64 KiB a turn of a busy event loop was too little (see PIPE_BYTES). asyncio gives the
    # child a pipe, which the child sizes; uvloop a socket pair, whose send buffer the server
    # raises (the kernel reports twice what was asked for). Each loop in a process of its own.
    script = textwrap.dedent(
        f"""
        import asyncio, uvloop
        from conv3n.storage.sqlite_process import ProcessWriter

        async def main():
            writer = ProcessWriter({str(table)!r}, lambda count: None)
            await writer.start()
            try:
                print(writer.buffer_bytes())
            finally:
                await writer.close()

        {run}(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(done.stdout) >= sqlite_process.PIPE_BYTES
