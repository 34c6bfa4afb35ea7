"""Benchmark of `conv3n serve` (issue 4): webhook throughput and latency, memory, start time.

    .venv/bin/python bench/server.py              # 10 s per point
    .venv/bin/python bench/server.py --seconds 5  # shorter

A real `conv3n serve` (SQLite in a temporary folder) answers a webhook -> std/transform ->
std/respond workflow under `wrk` (Debian package `wrk`; `scripts/ensure_wrk.sh` installs it)
at 1, 10 and 50 connections, with persistence on (every execution stored) and off
(CONV3N_PERSIST=off: nothing stored). The raw ceiling is the same stack (FastAPI on uvicorn
with uvloop and httptools) answering a constant JSON from one route (decision 0010); a bare
three-line ASGI app on the same uvicorn is shown beside it, for reference. RSS (the server's,
plus the memory only its children use) is measured idle and at its peak under load (psutil);
"ready" is the time from process start to /health answering.

Prints a markdown table (bench/run.py keeps it in RESULTS.md). No figure is asserted by a test.
"""

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONCURRENCY = (1, 10, 50)
WORKFLOW = {
    "version": 1,
    "id": "bench",
    "triggers": [{"type": "webhook", "path": "bench"}],
    "nodes": [
        {
            "id": "shape",
            "type": "std/transform",
            "config": {"template": {"order": "{{ $input.body.order }}", "ok": True}},
        },
        {"id": "reply", "type": "std/respond", "config": {"status": 200, "body": "{{ $input }}"}},
    ],
    "connections": [{"from": "shape", "to": "reply"}],
}
BODY = json.dumps({"order": 42})
CEILING_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.post("/bench")
async def bench():
    return {"order": 42, "ok": True}
@app.get("/")
async def ready():
    return {}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="off", access_log=False, loop="uvloop", http="httptools")
"""
ASGI_APP = """
import json, sys, uvicorn
BODY = json.dumps({"order": 42, "ok": True}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            lifespan="off", access_log=False, loop="uvloop", http="httptools")
"""
CEILING = "raw ceiling: FastAPI on uvicorn (constant JSON)"
ASGI = "bare ASGI app on uvicorn (constant JSON, reference)"
CONV3N_ON = "conv3n, persistence on"
CONV3N_OFF = "conv3n, persistence off"


@dataclass
class Point:
    """One wrk run."""

    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Server:
    """One measured server process."""

    name: str
    ready_s: float
    idle_rss_mb: float
    peak_rss_mb: float = 0.0
    points: list[Point] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], started: float) -> float:
    while time.monotonic() - started < 60:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            time.sleep(0.005)
    raise SystemExit("the server did not become ready within 60 s")


def rss_mb(proc: psutil.Process) -> float:
    """The resident memory of the server with its children (the SQLite writer process,
    decision 0011): the server's RSS plus each child's USS, the pages only that child uses.
    A child's RSS would count again the pages it shares with the server (libpython and the
    other libraries, about 8 MB for the writer)."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += child.memory_full_info().uss
    return total / 1024 / 1024


def wrk(url: str, connections: int, seconds: float, script: Path) -> Point:
    threads = min(2, connections)
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    text = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(non2xx.group(1)) if non2xx else 0
    return Point(connections, rps, latency(text, "50%"), latency(text, "99%"), errors)


def latency(text: str, percentile: str) -> float:
    match = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\b", text)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def measure(
    name: str,
    command: list[str],
    env: dict[str, str],
    port: int,
    url_path: str,
    ready_path: str,
    seconds: float,
    script: Path,
    setup: bool,
) -> Server:
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_ready(base + ready_path, proc, started)
        if setup:
            assert httpx.post(f"{base}/api/workflows", json=WORKFLOW).status_code == 201
            assert httpx.post(f"{base}/api/workflows/bench/activate").status_code == 200
            reply = httpx.post(
                base + url_path, content=BODY, headers={"content-type": "application/json"}
            )
            assert reply.status_code == 200, reply.text
        process = psutil.Process(proc.pid)
        time.sleep(0.5)
        server = Server(name, ready, rss_mb(process))
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                server.peak_rss_mb = max(server.peak_rss_mb, rss_mb(process))
                stop.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            for connections in CONCURRENCY:
                server.points.append(wrk(base + url_path, connections, seconds, script))
        finally:
            stop.set()
            sampler.join()
        return server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stderr is not None:
            proc.stderr.close()


def table(servers: list[Server], seconds: float) -> str:
    ceiling = _by_name(servers, CEILING)
    raw = {p.connections: p.rps for p in ceiling.points}
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    rows = [
        f"Machine: {machine}; wrk {seconds:g} s per point, all servers in one run (the ratios "
        "to the ceiling of the same run are what to compare: the machine's speed varies).",
        "",
        "| server | connections | req/s | % of ceiling | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        for p in server.points:
            share = p.rps / raw[p.connections] * 100 if raw.get(p.connections) else float("nan")
            rows.append(
                f"| {server.name} | {p.connections} | {p.rps:,.0f} | {share:.0f} % | "
                f"{p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.errors} |"
            )
    rows += [
        "",
        "| server | ready (start to /health) | RSS idle | RSS peak under load |",
        "|---|---|---|---|",
    ]
    for server in servers:
        rows.append(
            f"| {server.name} | {server.ready_s * 1000:.0f} ms | {server.idle_rss_mb:.0f} MB | "
            f"{server.peak_rss_mb:.0f} MB |"
        )
    on, off = _by_name(servers, CONV3N_ON), _by_name(servers, CONV3N_OFF)
    worst_on, worst_off = min(_shares(on, raw)), min(_shares(off, raw))
    peak = max(on.peak_rss_mb, off.peak_rss_mb)
    ready = max(on.ready_s, off.ready_s)
    rows += [
        "",
        "| target | figure | met |",
        "|---|---|---|",
        f"| persistence off >= 50 % of the ceiling (worst point) | {worst_off:.0f} % | "
        f"{_yes(worst_off >= 50)} |",
        f"| persistence on >= 25 % of the ceiling (worst point) | {worst_on:.0f} % | "
        f"{_yes(worst_on >= 25)} |",
        f"| RSS <= 100 MB under load | {peak:.0f} MB | {_yes(peak <= 100)} |",
        f"| ready < 1 s | {ready * 1000:.0f} ms | {_yes(ready < 1)} |",
    ]
    return "\n".join(rows)


def _by_name(servers: list[Server], name: str) -> Server:
    return next(server for server in servers if server.name == name)


def _shares(server: Server, raw: dict[int, float]) -> list[float]:
    return [p.rps / raw[p.connections] * 100 for p in server.points if raw.get(p.connections)]


def _yes(met: bool) -> str:
    return "yes" if met else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wrk duration per point")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_wrk.sh")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{BODY}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        base_env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CONV3N_LOG_LEVEL": "warning"}
        base_env.pop("CONV3N_API_TOKEN", None)
        servers = []
        for name, source, ready_path in ((CEILING, CEILING_APP, "/"), (ASGI, ASGI_APP, "/")):
            app_file = Path(tmp) / f"app_{len(servers)}.py"
            app_file.write_text(source)
            port = free_port()
            command = [sys.executable, str(app_file), str(port)]
            servers.append(
                measure(
                    name,
                    command,
                    base_env,
                    port,
                    "/bench",
                    ready_path,
                    args.seconds,
                    script,
                    setup=False,
                )
            )
        for persist in ("on", "off"):
            port = free_port()
            data = Path(tmp) / f"data-{persist}"
            env = {**base_env, "CONV3N_DATA_DIR": str(data), "CONV3N_PERSIST": persist}
            command = [sys.executable, "-m", "conv3n", "serve", "--port", str(port)]
            servers.append(
                measure(
                    CONV3N_ON if persist == "on" else CONV3N_OFF,
                    command,
                    env,
                    port,
                    "/webhook/bench",
                    "/health",
                    args.seconds,
                    script,
                    setup=True,
                )
            )
    text = table(servers, args.seconds)
    print(text)  # `make bench` (bench/run.py) puts it into its section of RESULTS.md


if __name__ == "__main__":
    main()
