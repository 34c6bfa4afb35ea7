"""Load and measurement: wrk runs with a POST lua script, RSS sampling of a process tree, polling.

`run_wrk` runs wrk with one thread (the load generator shares the machine's 2 cores with the
server, as in PEERS.md) and returns requests/s, p50/p90/p99 and the errors, read from a JSON line
that the lua script's `done()` prints. `RssSampler` samples the memory of a process tree
every 0.2 s while it is running (`tree_memory`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

BODY = {"name": "bench", "n": 3}
MIB = 1024 * 1024

LUA = """-- POST a small JSON body; done() prints the figures as one JSON line.
wrk.method = "POST"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkResult:
    """One wrk run: throughput, latency (ms) and errors."""

    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # wrk's "status" errors: responses with a status of 400 or more
    socket_errors: int  # connect + read + write + timeout
    rss_peak_mib: float | None = None
    rss_sum_peak_mib: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_lua(folder: Path) -> Path:
    path = folder / "post.lua"
    path.write_text(LUA % {"body": json.dumps(BODY, separators=(",", ":"))})
    return path


def run_wrk(url: str, connections: int, seconds: float, lua: Path) -> WrkResult:
    """wrk -t1 -cN -dSs --latency --timeout 30s (so slow servers count as latency, not errors)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (bench/peers/install.py installs it)")
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "30s",
        "-s",
        str(lua),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no figures: {done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    elapsed = raw["duration_us"] / 1e6
    return WrkResult(
        connections=connections,
        duration_s=round(elapsed, 3),
        requests=raw["requests"],
        rps=round(raw["requests"] / elapsed, 1) if elapsed else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=raw["status"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
    )


def tree_memory(pid: int) -> tuple[int, int]:
    """Bytes of memory of a process tree (0, 0 if it is gone): (the process's RSS plus each
    descendant's USS, every process's RSS added up).

    The first is what the tree costs the machine: a child's USS is the pages only it uses,
    where its RSS would count again the pages it shares with its parent (libpython and the
    other libraries, about 8 MB for conv3n's SQLite writer; libnode for n8n's runners). It is
    how bench/server.py counts the writer too. The plain sum is kept beside it.
    """
    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
        own = total = root.memory_info().rss
    except psutil.NoSuchProcess:
        return 0, 0
    for child in children:
        try:
            total += child.memory_info().rss
            own += child.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return own, total


class RssSampler:
    """Samples tree_memory(pid) on a thread between start() and stop(); peaks in MiB."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peak = 0
        self.peak_sum = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        own, total = tree_memory(self.pid)
        self.peak = max(self.peak, own)
        self.peak_sum = max(self.peak_sum, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mib(self) -> float:
        """The peak of the process's RSS plus its descendants' USS."""
        return round(self.peak / MIB, 1)

    @property
    def peak_sum_mib(self) -> float:
        """The peak of the RSS of every process in the tree added up."""
        return round(self.peak_sum / MIB, 1)


def post_json(url: str, timeout: float = 30.0) -> tuple[int, Any]:
    """One POST of BODY: (status, parsed JSON body or text)."""
    response = httpx.post(url, json=BODY, timeout=timeout)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def wait_until(probe: Any, timeout_s: float, started: float, every_s: float = 0.05) -> float:
    """Call probe() until it returns true; seconds since `started` (time.monotonic()).

    Raises TimeoutError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if probe():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(every_s)
    raise TimeoutError(f"not ready after {timeout_s:.0f} s")


def answers(url: str, method: str = "GET", ok: tuple[int, ...] = (200,)) -> bool:
    """True when `method url` answers one of the `ok` statuses (POSTs send BODY)."""
    if method == "POST":
        status = httpx.post(url, json=BODY, timeout=5).status_code
    else:
        status = httpx.get(url, timeout=5).status_code
    return status in ok
