"""conv3n under test: `conv3n serve` with persistence on (SQLite in a temporary data dir);
"conv3n-2" is `conv3n serve --processes 2` on its own data dir (decision 0015).

The workflows are the YAML files of bench/peers/workflows/, created and activated through the
API (POST /api/workflows, POST /api/workflows/{id}/activate). The one-shot figure is the wall
time of `conv3n run FILE --input ... --json` as a fresh process (interpreter start included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from load import BODY
from system import HERE, WORKFLOWS, System

ONE_SHOT_ROUNDS = 5
MULTI_PROCESS_WORKFLOWS = ("a", "b", "d")
"""What `--processes 2` is measured on: the workflows whose target is Node-RED's req/s."""


class Conv3n(System):
    name = "conv3n"
    label = "conv3n"

    def __init__(
        self,
        work: Path,
        port: int,
        python: str = sys.executable,
        variant: str = "base",
        processes: int = 1,
    ) -> None:
        if processes > 1:
            self.name = f"conv3n-{processes}"
            self.label = f"conv3n x{processes}"
        super().__init__(work, port)
        self.python = python
        self.variant = variant  # "base", or an experiment of webhook_cpu.py (profiling only)
        self.processes = processes
        self.data_dir = work / f"{self.name}-data"

    def has(self, workflow: str) -> bool:
        if self.processes > 1 and workflow not in MULTI_PROCESS_WORKFLOWS:
            return False
        return (WORKFLOWS / f"{workflow}.yaml").is_file()

    def command(self) -> list[str]:
        if self.variant != "base":
            launcher = str(HERE / "serve_variant.py")
            return [
                self.python,
                launcher,
                self.variant,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ]
        return [
            self.python,
            "-m",
            "conv3n",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--processes",
            str(self.processes),
        ]

    def wait_webhook(self, workflow: str, started: float) -> float:
        """Seconds until the first webhook answer (the primary's); then, before any load,
        until every process answers /health (the siblings start after the primary)."""
        first = super().wait_webhook(workflow, started)
        answering: set[str] = set()
        deadline = time.monotonic() + 60
        while len(answering) < self.processes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.label}: only {len(answering)} processes answer")
            with httpx.Client(timeout=5) as client:  # a new connection each time
                answering.add(client.get(self.health_url()).json()["instance"])
        return first

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["CONV3N_DATA_DIR"] = str(self.data_dir)
        env.pop("CONV3N_DATABASE_URL", None)  # the default: SQLite in the data dir
        return env

    def health_url(self) -> str:
        return self.base_url + "/health"

    def webhook_url(self, workflow: str) -> str:
        return f"{self.base_url}/webhook/bench-{workflow}"

    def version(self) -> str:
        from conv3n import __version__

        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=WORKFLOWS, capture_output=True, text=True
        ).stdout.strip()
        return f"{__version__} ({commit})" if commit else __version__

    def create(self, workflows: list[str]) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            for workflow in workflows:
                document = yaml.safe_load((WORKFLOWS / f"{workflow}.yaml").read_text())
                created = client.post("/api/workflows", json=document)
                if created.status_code == 409:  # kept from an earlier start of this data dir
                    created = client.put(f"/api/workflows/{document['id']}", json=document)
                created.raise_for_status()
                client.post(f"/api/workflows/{document['id']}/activate").raise_for_status()

    def one_shot(self, workflow: str) -> list[float] | None:
        if self.processes > 1:  # `conv3n run` is one process whatever the server runs
            return None
        source = WORKFLOWS / f"{workflow}.yaml"
        payload = {
            "method": "POST",
            "path": f"bench-{workflow}",
            "headers": {},
            "query": {},
            "body": BODY,
        }
        command = [
            self.python,
            "-m",
            "conv3n",
            "run",
            str(source),
            "--input",
            json.dumps(payload),
            "--json",
        ]
        times = []
        for _ in range(ONE_SHOT_ROUNDS):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=self.env(), check=False)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                return None
        return times
