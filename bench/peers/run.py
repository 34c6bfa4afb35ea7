"""`make bench-peers`: conv3n side by side with n8n and Node-RED on the same webhook workflows.

    .venv/bin/python bench/peers/run.py [--systems conv3n,conv3n-2,n8n,node-red]
        [--workflows a,b,d,c,c-call] [--duration 10] [--quick] [--concurrency 1,10,50]
        [--root /tmp/peers] [--fresh]

Installs what is missing (install.py; n8n takes ~10 min the first time, then is reused), starts
the local service of workflow (d) and measures the raw ceiling, then per system: prepares its
workflows, starts it once, times its start, checks each workflow's answer, loads each workflow
with wrk at each concurrency while sampling RSS, stops it and times the one-shot CLI runs.
Writes bench/peers/results.json (merged per system and workflow with an earlier run unless
--fresh), bench/peers/RESULTS-peers.md, bench/peers/throughput.png and, unless --quick, the
section of bench/RESULTS.md. Figures taken while the machine is busy are noise.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import install
import report
from conv3n_system import Conv3n
from load import RssSampler, WrkResult, post_json, run_wrk, tree_memory, write_lua
from n8n_system import N8n
from node_red_system import NodeRed
from system import Ceiling, System

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
PORTS = {
    "conv3n": 18680,
    "conv3n-2": 18682,
    "n8n": 15678,
    "node-red": 11880,
    "ceiling-uvloop": 18690,
    "upstream": 18691,
    "ceiling-fastapi": 18692,
}
EXPECTED = {
    "a": {"greeting": "hello bench", "double": 6},
    "b": {"steps": 13},
    "c": {"sum": 1498500},
    "c-call": {"sum": 1498500},
    "d": {"source": "upstream", "count": 5, "total": 15},
}
START_PROBE = "a"  # the workflow whose first answer ends the start figure


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
    }


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    words = (done.stdout + done.stderr).split()
    return words[1] if len(words) > 1 else "?"


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class Bench:
    """One run: the options, the scratch folder, the wrk script and the results so far."""

    def __init__(self, args: argparse.Namespace, results: dict[str, Any]) -> None:
        self.args = args
        self.results = results
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=args.root))
        self.lua = write_lua(self.work)
        self.conns = [int(c) for c in args.concurrency.split(",")]

    def load(self, system: System, url: str) -> dict[str, Any]:
        """Warm up, then one wrk run per concurrency with RSS sampled: runs by concurrency."""
        run_wrk(url, 10, self.args.warmup, self.lua)
        runs: dict[str, Any] = {}
        for connections in self.conns:
            with RssSampler(system.pid) as rss:
                result: WrkResult = run_wrk(url, connections, self.args.duration, self.lua)
            result.rss_peak_mib = rss.peak_mib
            result.rss_sum_peak_mib = rss.peak_sum_mib
            runs[str(connections)] = result.as_dict()
            log(
                f"  {system.label} c={connections}: {result.rps:,.1f} req/s, "
                f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                f"errors {result.non_2xx + result.socket_errors}, RSS {rss.peak_mib} MiB"
            )
        return runs

    def ceilings(self) -> None:
        self.results.get("ceiling", {}).pop("asyncio", None)  # conv3n serve runs on uvloop now
        for loop in ("fastapi", "uvloop"):
            ceiling = Ceiling(self.work, PORTS[f"ceiling-{loop}"], sys.executable, loop)
            started = ceiling.start()
            try:
                ceiling.wait_healthy(started)
                log(f"{ceiling.label}")
                self.results.setdefault("ceiling", {})[loop] = self.load(
                    ceiling, ceiling.webhook_url("")
                )
            finally:
                ceiling.stop()

    def system(self, system: System) -> None:
        """Start once, measure every workflow, stop, time the one-shot runs."""
        workflows = [workflow for workflow in self.args.workflows if system.has(workflow)]
        entry = self.results.setdefault("systems", {}).setdefault(system.name, {})
        entry.setdefault("workflows", {})
        entry["version"] = system.version()
        log(f"{system.label} {entry['version']}: preparing")
        system.prepare([workflow for workflow in EXPECTED if system.has(workflow)])
        if isinstance(system, Conv3n):  # created through the API, then timed on a restart
            started = system.start()
            try:
                system.wait_healthy(started)
                system.create([workflow for workflow in EXPECTED if system.has(workflow)])
            finally:
                system.stop()
        started = system.start()
        try:
            healthy = system.wait_healthy(started)
            first = system.wait_webhook(START_PROBE, started)
            time.sleep(1.0)  # let start-up work settle before the idle figure
            entry["start"] = {"healthy_s": round(healthy, 3), "first_webhook_s": round(first, 3)}
            own, total = tree_memory(system.pid)
            entry["rss_idle_mib"] = round(own / 2**20, 1)
            entry["rss_sum_idle_mib"] = round(total / 2**20, 1)
            log(
                f"{system.label}: healthy after {healthy:.2f} s, first webhook {first:.2f} s, "
                f"RSS {entry['rss_idle_mib']} MiB"
            )
            for workflow in workflows:
                measured = self.workflow(system, workflow)
                earlier = entry["workflows"].get(workflow, {})
                if measured["status"] == "ok" and earlier.get("status") == "ok":
                    # a run at other concurrencies keeps the earlier run's points
                    measured["runs"] = {**earlier.get("runs", {}), **measured["runs"]}
                entry["workflows"][workflow] = measured
        finally:
            system.stop()
        peaks = [
            run["rss_peak_mib"]
            for data in entry["workflows"].values()
            for run in data.get("runs", {}).values()
        ]
        entry["rss_peak_mib"] = max(peaks) if peaks else None
        entry.setdefault("one_shot", {})
        for workflow in workflows:
            if entry["workflows"][workflow]["status"] != "ok":
                continue
            try:
                times = system.one_shot(workflow)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"{system.label} one-shot ({workflow}) failed: {exc}")
                times = None
            if times:
                entry["one_shot"][workflow] = {
                    "median_s": round(statistics.median(times), 3),
                    "runs_s": [round(t, 3) for t in times],
                }
                log(
                    f"{system.label} one-shot ({workflow}): "
                    f"{entry['one_shot'][workflow]['median_s']:.2f} s"
                )

    def workflow(self, system: System, workflow: str) -> dict[str, Any]:
        url = system.webhook_url(workflow)
        status, body = post_json(url)
        measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if status != 200 or body != EXPECTED[workflow]:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and "message" in error:
                body = error["message"]
            note = f"the check request got {status}: {json.dumps(body)[:300]}"
            log(f"{system.label} ({workflow}) skipped: {note}")
            return {"status": "skipped", "note": note, "measured_at": measured_at}
        log(f"{system.label} ({workflow}) {url}")
        return {"status": "ok", "measured_at": measured_at, "runs": self.load(system, url)}


def make_system(name: str, work: Path, root: Path) -> System:
    if name == "conv3n":
        return Conv3n(work, PORTS[name])
    if name == "conv3n-2":
        return Conv3n(work, PORTS[name], processes=2)
    if name == "n8n":
        return N8n(work, PORTS[name], root)
    if name == "node-red":
        return NodeRed(work, PORTS[name], root)
    raise SystemExit(f"--systems: unknown system {name!r} (conv3n, conv3n-2, n8n, node-red)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="conv3n,conv3n-2,n8n,node-red")
    parser.add_argument("--workflows", default="a,b,d,c,c-call")  # code workers last
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per point")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 s per point, 1 s warm-up; bench/RESULTS.md is left alone",
    )
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds at 10 connections")
    parser.add_argument("--root", type=Path, default=install.DEFAULT_ROOT)
    parser.add_argument("--no-ceiling", action="store_true", help="keep the earlier ceiling")
    parser.add_argument("--fresh", action="store_true", help="drop earlier results.json figures")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.workflows = [w.strip() for w in args.workflows.split(",") if w.strip()]
    unknown = [w for w in args.workflows if w not in EXPECTED]
    if unknown:
        parser.error(f"--workflows: unknown {unknown} (a, b, c, c-call, d)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    begun = time.monotonic()
    busy = [f"{name} ({port})" for name, port in PORTS.items() if not port_free(port)]
    if busy:
        raise SystemExit(f"ports in use: {', '.join(busy)}")
    install.install_wrk()
    install.install(args.root, set(args.systems))
    if any(
        name.startswith("conv3n") for name in args.systems
    ):  # as `make run` does: starts must not compile conv3n first
        compileall.compile_dir(HERE.parents[1] / "src", quiet=1, workers=0)
    results: dict[str, Any] = {}
    if RESULTS.exists() and not args.fresh:
        results = json.loads(RESULTS.read_text())
    bench = Bench(args, results)
    import uvicorn

    results["meta"] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "duration_s": args.duration,
        "quick": args.quick,
        "versions": {
            **results.get("meta", {}).get("versions", {}),
            "python": platform.python_version(),
            "uvicorn": f"uvicorn {uvicorn.__version__}",
            "wrk": wrk_version(),
        },
    }
    if {"n8n", "node-red"} & set(args.systems):
        results["meta"]["versions"]["node"] = install.node_version(args.root)
    upstream = Ceiling(bench.work, PORTS["upstream"], sys.executable)
    started = upstream.start()
    try:
        upstream.wait_healthy(started)
        if not args.no_ceiling:
            bench.ceilings()
        for name in args.systems:
            system = make_system(name, bench.work, args.root)
            try:
                bench.system(system)
            except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
                # one system that does not start must not cost the others' figures
                log(f"{system.label} failed: {exc}")
                results["systems"][name]["error"] = str(exc)[:2000]
                system.stop()
                continue
            results["systems"][name].pop("error", None)
            results["meta"]["versions"][name] = results["systems"][name]["version"]
    finally:
        upstream.stop()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    (HERE / "RESULTS-peers.md").write_text(report.section(results, "throughput.png"))
    report.chart(results, HERE / "throughput.png")
    if not args.quick:
        report.update_results_md(report.section(results, "peers/throughput.png"))
    log(
        f"done in {time.monotonic() - begun:.0f} s: {RESULTS}, {HERE / 'RESULTS-peers.md'}, "
        f"{HERE / 'throughput.png'}; logs in {bench.work}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
