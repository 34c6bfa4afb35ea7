"""Virtual environments for `requirements`, built once and cached by their hash.

An environment lives in `<cache_dir>/python-envs/<hash>` where the hash covers the sorted
requirement strings and the Python version. It is made with `python -m venv --without-pip`
and filled by conv3n's own pip (`pip --python <env>`), which saves the seconds `ensurepip`
takes. A `.ready` file written last marks a complete environment; builders take an exclusive
`flock` on `<hash>.lock`, so concurrent calls (in this process or others) build it once and a
half-built folder left by a crash is removed and rebuilt. pip reads its usual configuration
(`PIP_INDEX_URL`, `pip.conf`); a requirement may be a local path or a `file://` URL.
"""

import asyncio
import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conv3n.sdk import BlockError

READY = ".ready"
_INSTALL_TIMEOUT_S = 900.0
_PIP_MESSAGE_CHARS = 4000


def env_key(requirements: list[str]) -> str:
    """The cache key of a set of requirements (order and duplicates do not matter)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    text = "\n".join([f"python{version}", *sorted(set(requirements))])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def check(requirements: list[str]) -> None:
    """Refuse requirement strings that are pip options or not one line.

    Raises:
        BlockError: naming `config.requirements[i]`.
    """
    for index, requirement in enumerate(requirements):
        where = f"config.requirements[{index}]"
        text = requirement.strip()
        if not text:
            raise BlockError(f"{where} is empty", details={"path": where})
        if text.startswith("-"):
            raise BlockError(
                f"{where} is a pip option ({text!r}); give a requirement, a path or a URL "
                "(pip's index is configured with PIP_INDEX_URL or pip.conf)",
                details={"path": where},
            )
        if any(char in text for char in "\r\n\0"):
            raise BlockError(f"{where} must be a single line", details={"path": where})


def python_of(env: Path) -> Path:
    """The interpreter of an environment."""
    return env / "bin" / "python"


def _build(env: Path, requirements: list[str]) -> None:
    """Create and fill `env` (the caller holds the lock)."""
    if env.exists():
        shutil.rmtree(env)
    venv = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [sys.executable, "-m", "venv", "--without-pip", str(env)],
        capture_output=True,
        text=True,
        timeout=_INSTALL_TIMEOUT_S,
        check=False,
    )
    if venv.returncode != 0:
        raise BlockError(
            f"creating the Python environment failed: {venv.stderr.strip()[-_PIP_MESSAGE_CHARS:]}"
        )
    command = [
        sys.executable, "-m", "pip", "--python", str(python_of(env)), "install",
        "--no-input", "--disable-pip-version-check", "--quiet", "--", *requirements,
    ]  # fmt: skip
    try:
        pip = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(env, ignore_errors=True)
        raise BlockError(
            f"installing the requirements took more than {_INSTALL_TIMEOUT_S:.0f} s",
            retryable=True,
        ) from None
    if pip.returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        message = (pip.stderr or pip.stdout).strip()[-_PIP_MESSAGE_CHARS:]
        raise BlockError(
            f"pip could not install the requirements: {message}",
            details={"requirements": requirements, "pip": message},
        )
    (env / READY).write_text("\n".join(requirements) + "\n", encoding="utf-8")


def _ensure_locked(root: Path, key: str, requirements: list[str]) -> Path:
    env = root / key
    if (env / READY).exists():
        return env
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (env / READY).exists():  # another builder may have finished meanwhile
                _build(env, requirements)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return env


async def ensure(cache_dir: Path | None, requirements: list[str]) -> Path:
    """The interpreter of the environment for `requirements`, built first if needed.

    Raises:
        BlockError: a bad requirement string, or pip's message when the install fails.
    """
    check(requirements)
    root = (cache_dir or Path(tempfile.gettempdir()) / "conv3n-cache") / "python-envs"
    key = env_key(requirements)
    env = root / key
    if not (env / READY).exists():
        # flock serializes builders across processes and across threads of this process
        env = await asyncio.to_thread(_ensure_locked, root, key, sorted(set(requirements)))
    return python_of(env)
