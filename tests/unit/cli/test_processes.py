"""`serve --processes`' parts with real sockets and real child processes: the shared listening
socket, and the siblings kept running, restarted and stopped."""

import asyncio
import signal
import socket
import sys

import psutil
import pytest

from conv3n.cli import processes
from conv3n.cli.processes import Siblings, listen
from conv3n.errors import InvalidInput

WAIT_FOR_EOF = "import sys; sys.stdin.buffer.read()"
DEAF_TO_SIGTERM = (
    "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); sys.stdin.buffer.read(); time.sleep(60)"
)


def test_shared_sockets_bind_one_port_and_both_accept():
    (first,) = listen("127.0.0.1", 0, shared=True)
    port = first.getsockname()[1]
    (second,) = listen("127.0.0.1", port, shared=True, joining=True)
    try:
        for sock in (first, second):
            sock.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert second.getsockname()[1] == port
        assert first.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        first.close()
        second.close()


def test_a_port_another_program_holds_is_refused_even_if_it_shares():
    (other,) = listen("127.0.0.1", 0, shared=True)  # a stranger that set SO_REUSEPORT too
    other.listen()
    port = other.getsockname()[1]
    try:
        with pytest.raises(InvalidInput, match=f"127.0.0.1:{port}: the port is in use"):
            listen("127.0.0.1", port, shared=True)
    finally:
        other.close()


def test_ipv6_loopback_is_bound_as_ipv6():
    if not socket.has_ipv6:
        pytest.skip("this system has no IPv6")
    try:
        (sock,) = listen("::1", 0, shared=True)
    except InvalidInput as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    with sock:
        assert sock.family == socket.AF_INET6


def test_a_name_for_several_addresses_gets_a_socket_each_on_one_port():
    sockets = listen("localhost", 0, shared=False)
    try:
        assert len({sock.getsockname()[1] for sock in sockets}) == 1
        assert {sock.family for sock in sockets} <= {socket.AF_INET, socket.AF_INET6}
    finally:
        for sock in sockets:
            sock.close()


def test_an_unshared_port_in_use_is_named_too():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(InvalidInput, match=f"127.0.0.1:{port}: the port is in use"):
            listen("127.0.0.1", port, shared=False)


def test_a_host_that_does_not_resolve_is_named():
    with pytest.raises(InvalidInput, match=r"cannot listen on 'no-such-host\.invalid'"):
        listen("no-such-host.invalid", 0, shared=True)


def command(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


async def wait_for(condition, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail(f"timed out waiting for {what}")


async def test_siblings_start_and_stop_on_sigterm():
    siblings = Siblings(2, command(WAIT_FOR_EOF), env={}, grace_s=5)
    siblings.start()
    await wait_for(lambda: len(siblings.pids) == 2, "two siblings")
    pids = siblings.pids
    await siblings.stop()
    assert siblings.pids == []
    assert not any(psutil.pid_exists(pid) for pid in pids)


async def test_a_dead_sibling_is_restarted_with_backoff(monkeypatch):
    monkeypatch.setattr(processes, "RESTART_BACKOFF_S", (0.01, 0.02))
    siblings = Siblings(1, command(WAIT_FOR_EOF), env={}, grace_s=5)
    siblings.start()
    await wait_for(lambda: len(siblings.pids) == 1, "the sibling")
    first = siblings.pids[0]
    psutil.Process(first).send_signal(signal.SIGKILL)
    await wait_for(lambda: siblings.pids and siblings.pids[0] != first, "a new sibling")
    assert siblings.restarts == 1
    await siblings.stop()


async def test_a_sibling_that_keeps_failing_is_retried_without_end(monkeypatch):
    monkeypatch.setattr(processes, "RESTART_BACKOFF_S", (0.001, 0.002))
    siblings = Siblings(1, command("raise SystemExit(3)"), env={}, grace_s=5)
    siblings.start()
    await wait_for(lambda: siblings.restarts >= 3, "three restarts")
    await siblings.stop()


async def test_a_sibling_deaf_to_sigterm_is_killed_after_the_grace(monkeypatch, tmp_path):
    monkeypatch.setattr(processes, "KILL_AFTER_S", 0.2)
    deaf = tmp_path / "deaf"
    siblings = Siblings(1, command(DEAF_TO_SIGTERM, str(deaf)), env={}, grace_s=0)
    siblings.start()
    await wait_for(deaf.exists, "the sibling to set SIGTERM aside")
    pid = siblings.pids[0]
    await asyncio.wait_for(siblings.stop(), 10)
    assert not psutil.pid_exists(pid)


async def test_a_stop_while_a_sibling_is_starting_stops_it_too():
    siblings = Siblings(3, command(WAIT_FOR_EOF), env={}, grace_s=5)
    siblings.start()
    await asyncio.wait_for(siblings.stop(), 15)  # right away: none may be left running
    assert siblings.pids == []
