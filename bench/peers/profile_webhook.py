"""Where the time of a conv3n webhook request goes: py-spy on `conv3n serve` under wrk load.

Starts `conv3n serve` (SQLite, as run.py does), creates the bench workflows, loads one of them
with wrk while `py-spy record` samples the server, and sorts every sample into the layer of its
innermost frame that belongs to one (standard-library frames such as `copy` or `typing` count
for their caller; `json`, `asyncio`, `sqlite3` and `logging` are layers of their own):

    .venv/bin/python bench/peers/profile_webhook.py [--workflow a] [--seconds 15] [--connections 10]

Prints a markdown table (self share and inclusive share per layer) and writes the raw collapsed
stacks and a speedscope file to the run's scratch folder. py-spy adds overhead of its own, so
the shares are what matters, not the throughput printed next to them.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import install
from conv3n_system import Conv3n
from load import run_wrk, write_lua

# (layer, pattern on a frame's file path); the first that matches names the frame's layer
LAYERS = [
    (
        "journal/SQLite (storage, SQLAlchemy, sqlite3)",
        r"conv3n/storage/|sqlalchemy/|aiosqlite/|(^|/)sqlite3/|alembic/|greenlet",
    ),
    ("JSON (json; orjson is C, seen as its caller)", r"(^|/)json/"),
    ("expressions (conv3n.expr)", r"conv3n/expr/"),
    (
        "engine (engine, blocks, sdk, compiler, model)",
        r"conv3n/engine/|conv3n/blocks/|conv3n/sdk/|conv3n/compiler/|conv3n/model",
    ),
    ("runtime (conv3n.runtime: executions, webhooks index)", r"conv3n/runtime/"),
    ("webhook handler (conv3n.api)", r"conv3n/api/"),
    (
        "metrics and logs (prometheus_client, logging, structlog)",
        r"prometheus_client/|(^|/)logging/|structlog/|conv3n/observability/",
    ),
    ("pydantic (models, validation)", r"pydantic/|pydantic_core/"),
    ("Starlette/FastAPI (routing, request, response)", r"starlette/|fastapi/|anyio/"),
    ("uvicorn/httptools (HTTP parsing, transport)", r"uvicorn/|httptools/|h11/"),
    ("asyncio event loop and sockets", r"(^|/)asyncio/|uvloop/|(^|/)selectors\.py"),
]
# leaves where a thread waits (py-spy's idle detection misses waits inside C calls)
IDLE = re.compile(r"^(EpollSelector\.select|select|_worker|Condition\.wait|Queue\.get) ")
STDLIB_NAMES = frozenset(sys.stdlib_module_names)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):(?P<line>\d+)\)$")
OTHER = "other libraries (httpx, typer, ...)"


def _aiosqlite_waits(leaf: str) -> bool:
    """True for aiosqlite's worker thread blocked in `tx.get()` between two calls."""
    global _TX_GET_LINE
    if _TX_GET_LINE is None:
        import inspect

        import aiosqlite.core

        lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
        _TX_GET_LINE = next((first + i for i, text in enumerate(lines) if "tx.get()" in text), -1)
    return leaf == f"_connection_worker_thread (aiosqlite/core.py:{_TX_GET_LINE})"


_TX_GET_LINE: int | None = None


def _stdlib(file: str) -> bool:
    """Whether a frame's file is the standard library's (py-spy shortens the paths of the
    standard library and site-packages alike, so the module name decides)."""
    if file.startswith("<frozen"):
        return True
    if "site-packages/" in file:
        return False
    if "/lib/python3" in file:
        return True
    top = file.split("/", 1)[0].removesuffix(".py")
    return top in STDLIB_NAMES


def layer_of(file: str) -> str | None:
    for name, pattern in LAYERS:
        if re.search(pattern, file):
            return name
    return None


def classify(stack: list[str]) -> tuple[str, set[str]]:
    """(the layer of the innermost frame that has one, every layer on the stack)."""
    files = [match.group("file") if (match := FRAME.match(frame)) else frame for frame in stack]
    present = {layer for file in files if (layer := layer_of(file))}
    for file in reversed(files):
        layer = layer_of(file)
        if layer is not None:
            return layer, present
        if not _stdlib(file):  # a library frame outside every layer
            return OTHER, present
    return OTHER, present


class Shares:
    """Samples of the event-loop thread (per layer, idle) and of the other threads (SQLite)."""

    def __init__(self) -> None:
        self.own: collections.Counter[str] = collections.Counter()
        self.anywhere: collections.Counter[str] = collections.Counter()
        self.loop_busy = 0
        self.loop_idle = 0
        self.workers_busy = 0
        self.workers_idle = 0
        self.workers_own: collections.Counter[str] = collections.Counter()

    def add(self, frames: list[str], count: int) -> None:
        worker = bool(frames) and frames[0].startswith("Thread._bootstrap ")
        idle = not frames or bool(IDLE.match(frames[-1])) or _aiosqlite_waits(frames[-1])
        if worker:
            if idle:
                self.workers_idle += count
            else:
                self.workers_busy += count
                self.workers_own[classify(frames)[0]] += count
            return
        if idle:
            self.loop_idle += count
            return
        self.loop_busy += count
        layer, present = classify(frames)
        self.own[layer] += count
        for name in present:
            self.anywhere[name] += count


def shares(collapsed: str) -> Shares:
    """Sort py-spy's collapsed stacks (`frame;frame;... count`, recorded with --idle)."""
    result = Shares()
    for line in collapsed.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        frames = [f for f in stack_text.split(";") if FRAME.match(f)]
        result.add(frames, int(count_text))
    return result


def table(result: Shares) -> str:
    busy = result.loop_busy or 1
    loop_total = result.loop_busy + result.loop_idle or 1
    lines = [
        f"Event-loop thread: busy {100 * result.loop_busy / loop_total:.0f} % of its samples "
        f"(idle in epoll {100 * result.loop_idle / loop_total:.0f} %). Shares of its busy "
        "samples:",
        "",
        "| layer | self (innermost frame) | inclusive (anywhere on the stack) |",
        "|---|---|---|",
    ]
    lines.extend(
        f"| {name} | {100 * result.own[name] / busy:.1f} % | "
        f"{100 * result.anywhere.get(name, result.own[name]) / busy:.0f} % |"
        for name in sorted(result.own, key=lambda n: -result.own[n])
    )
    worker_total = result.workers_busy + result.workers_idle or 1
    top = ", ".join(
        f"{name} {100 * n / (result.workers_busy or 1):.0f} %"
        for name, n in result.workers_own.most_common(3)
    )
    lines += [
        "",
        f"Other threads (aiosqlite's connection threads): busy "
        f"{100 * result.workers_busy / worker_total:.0f} % of their samples "
        f"({result.workers_busy:,} busy samples, equal to "
        f"{100 * result.workers_busy / loop_total:.0f} % of the loop thread's time; {top}).",
    ]
    lines += ["", f"{loop_total:,} samples of the loop thread."]
    return "\n".join(lines) + "\n"


def record(pyspy: str, pid: int, seconds: float, out: Path, fmt: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "200",
            "--duration",
            str(round(seconds)),
            "--format",
            fmt,
            "--output",
            str(out),
            "--nonblocking",
            "--idle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflow", default="a", choices=list("abcd"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--port", type=int, default=18685)
    parser.add_argument("--root", type=Path, default=install.DEFAULT_ROOT)
    parser.add_argument(
        "--variant", default="base", help="a webhook_cpu.py experiment, e.g. plan-cache"
    )
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-", dir=args.root))
    lua = write_lua(work)
    conv3n = Conv3n(work, args.port, variant=args.variant)
    upstream = None
    if args.workflow == "d":
        from system import Ceiling

        upstream = Ceiling(work, 18691, sys.executable)
        upstream.wait_healthy(upstream.start())
    started = conv3n.start()
    try:
        conv3n.wait_healthy(started)
        conv3n.create(["a", "b", "c", "d"])
        url = conv3n.webhook_url(args.workflow)
        run_wrk(url, args.connections, 2, lua)  # warm-up
        raw, speedscope = work / "profile.txt", work / "profile.speedscope.json"
        for out, fmt in ((raw, "raw"), (speedscope, "speedscope")):
            spy = record(pyspy, conv3n.pid, args.seconds, out, fmt)
            time.sleep(0.5)
            result = run_wrk(url, args.connections, args.seconds, lua)
            _, errors = spy.communicate(timeout=60)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed: {errors.decode()[-2000:]}")
            print(
                f"{fmt}: {result.rps:,.0f} req/s under py-spy ({args.connections} conn.)",
                file=sys.stderr,
            )
    finally:
        conv3n.stop()
        if upstream is not None:
            upstream.stop()
    found = shares(raw.read_text())
    print(
        f"Workflow ({args.workflow}), {args.connections} connections, {args.seconds:g} s; "
        f"collapsed stacks: {raw}; speedscope: {speedscope}\n"
    )
    print(table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
