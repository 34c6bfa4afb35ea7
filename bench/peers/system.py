"""A system under test: one server process tree that run.py starts, loads and stops.

Each system (conv3n, n8n, Node-RED, the ceiling) says how to prepare its workflows before the
start, how to start, when it is healthy, how to create workflows after the start, where each
workflow's webhook is and how to time a one-shot CLI run. The process runs in its own session so
that stop() ends exactly its tree (by its process group id) and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from load import answers, wait_until

HERE = Path(__file__).resolve().parent
WORKFLOWS = HERE / "workflows"
PEER_WORKFLOWS = ("a", "b", "c", "d")
"""The workflows every system has; conv3n also has c-call ((c) in a fresh process per call)."""
START_TIMEOUT_S = 120.0


class System:
    """Base: a server started with `command()` and `env()`, healthy when `healthy()` is true."""

    name = "system"
    label = "system"

    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # what each system defines
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def health_url(self) -> str:
        raise NotImplementedError

    def webhook_url(self, workflow: str) -> str:
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def has(self, workflow: str) -> bool:
        """True when this system has the workflow (the peers have (a) to (d) only)."""
        return workflow in PEER_WORKFLOWS

    def prepare(self, workflows: list[str]) -> None:
        """Before the start: put the workflows where the server reads them."""

    def create(self, workflows: list[str]) -> None:
        """After the start: create the workflows through the server's API."""

    def one_shot(self, workflow: str) -> list[float] | None:
        """Wall times of the CLI's one-shot runs of the workflow, or None when it has none."""
        return None

    # the process
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> float:
        """Start the server; the time.monotonic() of the start."""
        self.work.mkdir(parents=True, exist_ok=True)
        self._log = (self.work / f"{self.name}.log").open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.command(),
            env=self.env(),
            cwd=self.work,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return started

    def wait_healthy(self, started: float) -> float:
        """Seconds from the start until the health URL answers 200."""
        return wait_until(
            lambda: self._alive() and answers(self.health_url()), START_TIMEOUT_S, started
        )

    def wait_webhook(self, workflow: str, started: float) -> float:
        """Seconds from the start until the workflow's webhook answers 2xx."""
        url = self.webhook_url(workflow)
        ok = tuple(range(200, 300))
        return wait_until(
            lambda: self._alive() and answers(url, "POST", ok), START_TIMEOUT_S, started
        )

    def _alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.label} exited with {self.process.returncode}; "
                f"see {self.work}/{self.name}.log"
            )
        return True

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 20 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        # children that outlived the leader (task runners, code workers) go too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


CEILING_LABELS = {
    "fastapi": "raw ceiling (FastAPI on uvicorn)",
    "uvloop": "bare ASGI on uvicorn",
}


class Ceiling(System):
    """bench/peers/ceiling.py: a FastAPI route (`variant="fastapi"`, the ceiling of decision
    0010) or the bare ASGI app (`"uvloop"`, also the local service of workflow (d))."""

    name = "ceiling"
    label = "raw ceiling"

    def __init__(self, work: Path, port: int, python: str, variant: str = "uvloop") -> None:
        super().__init__(work, port)
        self.python = python
        self.variant = variant
        self.name = f"ceiling-{variant}"
        self.label = CEILING_LABELS.get(variant, f"raw ceiling ({variant})")

    def command(self) -> list[str]:
        app = "fastapi" if self.variant == "fastapi" else "asgi"
        loop = "asyncio" if self.variant == "asyncio" else "uvloop"
        return [
            self.python,
            str(HERE / "ceiling.py"),
            "--port",
            str(self.port),
            "--loop",
            loop,
            "--app",
            app,
        ]

    def health_url(self) -> str:
        return self.base_url + "/health"

    def webhook_url(self, workflow: str) -> str:
        return self.base_url + "/data"

    def version(self) -> str:
        import uvicorn

        return f"uvicorn {uvicorn.__version__}"
