"""npm packages for custom/code: `config.requirements` installed once per distinct set.

A set of npm specs is installed with `npm install` into `<cache_dir>/npm/<hash>` (staged in a
sibling folder and renamed into place, so concurrent installs in several processes are safe;
within one process a lock per hash makes the second caller wait for the first). The code of a
call is then written next to a `node_modules` link to that folder, so `import x from "pkg"`
resolves there on Bun and Node alike (NODE_PATH does not apply to ES modules). Install scripts
do not run (`--ignore-scripts`).
"""

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import uuid
from pathlib import Path

from conv3n.blocks.custom.js.pool import JsRunners
from conv3n.sdk import BlockError

INSTALL_TIMEOUT_S = 600.0
MAX_SPEC_CHARS = 500
_SPEC = re.compile(r"[^\s\-][^\s]*")
_TRANSIENT = ("ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "ENOTFOUND", "ECONNREFUSED")
_DONE = ".conv3n-complete"


def check_specs(requirements: list[str]) -> list[str]:
    """The specs, or a BlockError naming the first bad one (`config.requirements[2]`)."""
    for index, spec in enumerate(requirements):
        where = f"config.requirements[{index}]"
        if len(spec) > MAX_SPEC_CHARS:
            raise BlockError(f"{where} is longer than {MAX_SPEC_CHARS} characters")
        if not _SPEC.fullmatch(spec):
            raise BlockError(
                f"{where} is not an npm package spec: {spec[:80]!r} (a name such as "
                "`lodash@4`, a `file:` path or a URL, without spaces, not starting with `-`)"
            )
    return requirements


def digest(requirements: list[str]) -> str:
    """The hash naming an environment: the same set of specs in any order gives the same one."""
    text = json.dumps(sorted(set(requirements)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


async def environment(runners: JsRunners, requirements: list[str], cache_dir: Path | None) -> Path:
    """The folder to write code into so that its imports find `requirements`."""
    key = digest(check_specs(requirements))
    folder = runners.environments.get(key)
    if folder is not None:
        return folder
    lock = runners.locks.setdefault(key, asyncio.Lock())
    async with lock:
        folder = runners.environments.get(key)
        if folder is not None:
            return folder
        base = (cache_dir if cache_dir is not None else runners.root) / "npm"
        installed = await _install(base, key, requirements)
        folder = runners.root / f"env-{key}"
        await asyncio.to_thread(_link, folder, installed / "node_modules")
        runners.environments[key] = folder
        return folder


def _link(folder: Path, node_modules: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "node_modules"
    if not link.is_symlink():
        link.symlink_to(node_modules, target_is_directory=True)


async def _install(base: Path, key: str, requirements: list[str]) -> Path:
    target = base / key
    if await asyncio.to_thread((target / _DONE).is_file):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise BlockError("config.requirements needs npm, and it is not installed")
    staging = base / f".{key}.{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(_prepare, staging)
    command = [
        npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--ignore-scripts",
        "--install-links", "--no-update-notifier", "--loglevel=error", *requirements,
    ]  # fmt: skip
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=staging,
        )
        try:
            async with asyncio.timeout(INSTALL_TIMEOUT_S):
                output, _ = await process.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
    except TimeoutError:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise BlockError(
            f"npm install of config.requirements took longer than {INSTALL_TIMEOUT_S:.0f} s",
            retryable=True,
            details={"requirements": requirements},
        ) from None
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise
    text = output.decode("utf-8", "replace").strip()
    if process.returncode != 0:
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise BlockError(
            f"npm install of config.requirements failed: {text[-2000:]}",
            retryable=any(code in text for code in _TRANSIENT),
            details={"requirements": requirements, "exit_code": process.returncode},
        )
    await asyncio.to_thread(_publish, staging, target)
    return target


def _prepare(staging: Path) -> None:
    staging.mkdir(parents=True)
    manifest = {"name": "conv3n-code-environment", "private": True, "type": "module"}
    (staging / "package.json").write_text(json.dumps(manifest), encoding="utf-8")


def _publish(staging: Path, target: Path) -> None:
    """Move a finished install into place; if another process was first, keep its folder."""
    (staging / _DONE).touch()
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / _DONE).is_file():
            raise
