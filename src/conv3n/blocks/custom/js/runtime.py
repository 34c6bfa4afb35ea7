"""Finding the JavaScript runtime for custom/code: Bun, else Node.

Bun is looked for on PATH, then in the project's `.tools/node_modules/.bin` (where `make tools`
installs the npm package `bun`); Node on PATH. TypeScript needs Bun, or Node 22.6 or later (run
with `--experimental-strip-types`).
"""

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from conv3n.sdk import BlockError

WORKER_SOURCE = Path(__file__).with_name("worker.mjs")
NODE_STRIP_TYPES = (22, 6)
RuntimeChoice = Literal["auto", "bun", "node"]


@dataclass(frozen=True)
class Runtime:
    """One JavaScript runtime executable and how to start a worker on it."""

    kind: Literal["bun", "node"]
    path: str
    version: tuple[int, ...]

    def worker_command(self, heap_mb: int, max_result_bytes: int) -> list[str]:
        """The command line of a worker process."""
        if self.kind == "bun":
            return [self.path, "--no-install", str(WORKER_SOURCE), str(max_result_bytes)]
        flags = [f"--max-old-space-size={heap_mb}", "--no-warnings"]
        if self.version >= NODE_STRIP_TYPES:
            flags.append("--experimental-strip-types")
        return [self.path, *flags, str(WORKER_SOURCE), str(max_result_bytes)]

    @property
    def runs_typescript(self) -> bool:
        """Whether this runtime can import `.ts` files."""
        return self.kind == "bun" or self.version >= NODE_STRIP_TYPES


def _version(path: str) -> tuple[int, ...]:
    done = subprocess.run(  # noqa: S603 - a found executable, fixed arguments
        [path, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    numbers = re.findall(r"\d+", done.stdout)
    return tuple(int(number) for number in numbers[:3])


def _project_tools() -> list[Path]:
    """`.tools/node_modules/.bin/bun` in the folders above this package (a source checkout)."""
    return [folder / ".tools/node_modules/.bin/bun" for folder in Path(__file__).parents]


@functools.cache
def find_bun() -> Runtime | None:
    """Bun on PATH or in the project's `.tools`, if it runs."""
    candidates = [shutil.which("bun"), *map(str, _project_tools())]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            try:
                return Runtime("bun", candidate, _version(candidate))
            except (OSError, subprocess.SubprocessError):
                continue
    return None


@functools.cache
def find_node() -> Runtime | None:
    """Node on PATH, if it runs."""
    path = shutil.which("node")
    if path is None:
        return None
    try:
        return Runtime("node", path, _version(path))
    except (OSError, subprocess.SubprocessError):
        return None


def discovered() -> bool:
    """Whether both runtimes were looked for already (then `choose` does no I/O)."""
    return find_bun.cache_info().currsize > 0 and find_node.cache_info().currsize > 0


def discover() -> None:
    """Look for both runtimes (runs `--version`: call it off the event loop)."""
    find_bun()
    find_node()


def choose(language: str, choice: RuntimeChoice) -> Runtime:
    """The runtime for `language` ("javascript" or "typescript") and `config.runtime`."""
    bun = find_bun() if choice in ("auto", "bun") else None
    node = find_node() if choice in ("auto", "node") else None
    if choice == "bun" and bun is None:
        raise BlockError(
            "config.runtime is bun, but Bun is not installed: put `bun` on PATH "
            "(`make tools` installs it into .tools/)"
        )
    if choice == "node" and node is None:
        raise BlockError("config.runtime is node, but Node.js is not installed (no `node` on PATH)")
    if language == "typescript":
        for runtime in (bun, node):
            if runtime is not None and runtime.runs_typescript:
                return runtime
        found = f" (found Node {'.'.join(map(str, node.version))})" if node else ""
        raise BlockError(
            "TypeScript needs Bun or Node 22.6 or later, and neither is installed" + found
        )
    runtime = bun or node
    if runtime is None:
        raise BlockError("JavaScript needs Bun or Node.js, and neither is installed")
    return runtime
