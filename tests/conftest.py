"""Shared fixtures: a local HTTP upstream, example paths, service checks."""

import asyncio
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI") == "true"


@dataclass
class Recorded:
    """One request the upstream received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    header_pairs: list[tuple[str, str]] = field(default_factory=list)  # repeats kept, in order


Handler = Callable[[Recorded], tuple[int, dict[str, str], bytes]]


@dataclass
class Upstream:
    """A real HTTP server on a free loopback port; routes map a path to a handler."""

    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(
        self, path: str, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer `path` with a fixed status and JSON (or bytes/str) body."""
        if isinstance(body, bytes):
            payload, kind = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, kind = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, kind = json.dumps(body).encode(), "application/json"
        answer = {"Content-Type": kind, **(headers or {})}
        self.routes[path] = lambda _req: (status, answer, payload)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """A threaded HTTP server standing in for a third-party API."""
    state = Upstream()

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            pairs = list(self.headers.items())
            recorded = Recorded(self.command, self.path, dict(pairs), body, pairs)
            state.requests.append(recorded)
            handler = state.routes.get(self.path.split("?")[0])
            if handler is None:
                status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not found"
            else:
                status, headers, payload = handler(recorded)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # socketserver's 5 drops connections opened at once

        def handle_error(self, request: Any, client_address: Any) -> None:
            # a client that went away (a killed process, a timeout) is part of many tests
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), RequestHandler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_available(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally, fail in CI, when a real service is missing."""
    if service_available(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI must have it)")
    pytest.skip(message)


__all__ = ["EXAMPLES", "ROOT", "SHARED", "Upstream", "asyncio", "free_port", "require_service"]
