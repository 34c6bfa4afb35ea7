"""Settings: the only reader of CONV3N_* environment variables (SPEC §9).

A plain frozen dataclass rather than pydantic-settings: it is read on every CLI start, and a
bad value gets an error that names the variable.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from conv3n.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Settings:
    """Process-wide configuration, read once at the edge.

    Attributes:
        data_dir: the data folder (SQLite database, generated key, files root).
        database_url: `postgresql://…` or `mysql://…`; None means SQLite in the data dir.
        secret_key: base64 of 32 bytes encrypting stored secrets; None means the generated
            key file in the data dir.
        env_allow: environment variable names visible as `$env`.
        max_subworkflow_depth: how deep std/subworkflow may nest.
        max_result_bytes: node results larger than this are stored in a side table.
        retention_days: finished executions older than this are pruned (0: keep all).
        retention_per_workflow: newest finished executions kept per workflow (0: keep all).
        lease_seconds: how long a process's claim on a running execution (or on a scheduled
            or file trigger) lasts unrenewed.
        trigger_sync_seconds: how often a server re-reads which workflows are active, to
            follow (de)activations made by other processes.
        park_after_seconds: a std/delay longer than this parks a stored execution as
            `waiting` (resumed when due, even after a restart) instead of waiting in memory.
        host, port: where `conv3n serve` listens.
        processes: how many server processes `conv3n serve` runs on that port
            (CONV3N_PROCESSES, 1..64; docs/server.md).
        api_token: when set, /api/* needs `Authorization: Bearer <token>`.
        files_root: the only folder std/file may touch (CONV3N_FILES_ROOT).
        cache_dir: caches that outlive the process, e.g. code environments (CONV3N_CACHE_DIR).
        public_url_base: the server's URL as others reach it (CONV3N_PUBLIC_URL), used in
            `$execution.resume_url`; default `http://{host}:{port}`.
        blocks_dir: the folder of process blocks, one subfolder per manifest (CONV3N_BLOCKS_DIR).
        max_concurrency: executions running at once in this process (CONV3N_MAX_CONCURRENCY).
        max_queued: executions that may wait for a turn; past it new ones get 429
            (CONV3N_MAX_QUEUED).
        shutdown_grace_seconds: how long `serve` lets running executions finish on SIGTERM
            before it leaves them for the next start to resume (CONV3N_SHUTDOWN_GRACE_SECONDS).
        max_request_bytes: the largest /api/* request body (CONV3N_MAX_REQUEST_BYTES).
        log_format: `json`, `console`, or None for console on a terminal and JSON otherwise
            (CONV3N_LOG_FORMAT).
        log_level: the least severe level logged (CONV3N_LOG_LEVEL, default info).
        persist: False stores no executions at all (CONV3N_PERSIST=off; benchmarks only:
            nothing can be listed, resumed or retried).
        sqlite_writer: who commits execution results to a SQLite file (CONV3N_SQLITE_WRITER):
            `process` (default), a writer process of the server's own, so the commits run on
            another core; `inline`, the server's event loop thread.
    """

    data_dir: Path = Path(".conv3n")
    database_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    env_allow: tuple[str, ...] = ()
    max_subworkflow_depth: int = 10
    max_result_bytes: int = 1024 * 1024
    retention_days: float = 14
    retention_per_workflow: int = 10_000
    lease_seconds: float = 30
    trigger_sync_seconds: float = 5
    park_after_seconds: float = 30
    host: str = "127.0.0.1"
    port: int = 5680
    processes: int = 1
    api_token: str | None = field(default=None, repr=False)
    files_root_dir: Path | None = None
    cache_dir_path: Path | None = None
    public_url_base: str | None = None
    blocks_dir_path: Path | None = None
    max_concurrency: int = 100
    max_queued: int = 1000
    shutdown_grace_seconds: float = 10
    max_request_bytes: int = 10 * 1024 * 1024
    log_format: str | None = None
    log_level: str = "info"
    persist: bool = True
    sqlite_writer: Literal["process", "inline"] = "process"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Settings from `CONV3N_*` variables (the process environment by default).

        Raises:
            InvalidInput: a variable holds a value of the wrong kind (the message names it).
        """
        env = dict(os.environ if environ is None else environ)
        allow = tuple(n.strip() for n in env.get("CONV3N_ENV_ALLOW", "").split(",") if n.strip())
        values: dict[str, object] = {
            "data_dir": Path(env.get("CONV3N_DATA_DIR") or ".conv3n"),
            "database_url": env.get("CONV3N_DATABASE_URL") or None,
            "secret_key": env.get("CONV3N_SECRET_KEY") or None,
            "env_allow": allow,
            "max_subworkflow_depth": _number(env, "CONV3N_MAX_SUBWORKFLOW_DEPTH", 10, 1),
            "max_result_bytes": _number(env, "CONV3N_MAX_RESULT_BYTES", 1024 * 1024, 1024),
            "retention_days": _number(env, "CONV3N_RETENTION_DAYS", 14, 0, kind=float),
            "retention_per_workflow": _number(env, "CONV3N_RETENTION_PER_WORKFLOW", 10_000, 0),
            "lease_seconds": _number(env, "CONV3N_LEASE_SECONDS", 30, 1, kind=float),
            "trigger_sync_seconds": _number(env, "CONV3N_TRIGGER_SYNC_SECONDS", 5, 0.1, kind=float),
            "park_after_seconds": _number(env, "CONV3N_PARK_AFTER_SECONDS", 30, 0, kind=float),
            "host": env.get("CONV3N_HOST") or "127.0.0.1",
            "port": _number(env, "CONV3N_PORT", 5680, 0, maximum=65535),
            "processes": _number(env, "CONV3N_PROCESSES", 1, 1, maximum=MAX_PROCESSES),
            "api_token": env.get("CONV3N_API_TOKEN") or None,
            "files_root_dir": _path(env, "CONV3N_FILES_ROOT"),
            "cache_dir_path": _path(env, "CONV3N_CACHE_DIR"),
            "public_url_base": (env.get("CONV3N_PUBLIC_URL") or "").strip().rstrip("/") or None,
            "blocks_dir_path": _path(env, "CONV3N_BLOCKS_DIR"),
            "max_concurrency": _number(env, "CONV3N_MAX_CONCURRENCY", 100, 1),
            "max_queued": _number(env, "CONV3N_MAX_QUEUED", 1000, 0),
            "shutdown_grace_seconds": _number(
                env, "CONV3N_SHUTDOWN_GRACE_SECONDS", 10, 0, kind=float
            ),
            "max_request_bytes": _number(env, "CONV3N_MAX_REQUEST_BYTES", 10 * 1024 * 1024, 1),
            "log_format": _choice(env, "CONV3N_LOG_FORMAT", ("json", "console")),
            "log_level": _choice(env, "CONV3N_LOG_LEVEL", _LEVELS) or "info",
            "persist": _choice(env, "CONV3N_PERSIST", ("on", "off")) != "off",
            "sqlite_writer": cast(
                Literal["process", "inline"],
                _choice(env, "CONV3N_SQLITE_WRITER", ("process", "inline")) or "process",
            ),
            "environ": env,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def database(self) -> str:
        """The database URL in use (SQLite in the data dir unless one is set)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'conv3n.db').resolve()}"

    @property
    def secret_key_file(self) -> Path:
        """Where the generated secret key lives when CONV3N_SECRET_KEY is not set."""
        return self.data_dir / "secret.key"

    @property
    def files_root(self) -> Path:
        """The only folder std/file may touch (`$CONV3N_DATA_DIR/files` unless set)."""
        return (self.files_root_dir or self.data_dir / "files").resolve()

    @property
    def cache_dir(self) -> Path:
        """Caches that outlive the process (`$CONV3N_DATA_DIR/cache` unless set)."""
        return (self.cache_dir_path or self.data_dir / "cache").resolve()

    @property
    def public_url(self) -> str:
        """The server's base URL as others reach it."""
        return self.public_url_base or f"http://{self.host}:{self.port}"

    @property
    def blocks_dir(self) -> Path:
        """Process blocks, one subfolder per manifest (`$CONV3N_DATA_DIR/blocks` unless set)."""
        return (self.blocks_dir_path or self.data_dir / "blocks").resolve()

    def visible_env(self) -> dict[str, str]:
        """The allow-listed variables that are set: what `$env` shows."""
        return {name: self.environ[name] for name in self.env_allow if name in self.environ}


MAX_PROCESSES = 64
"""The most server processes `conv3n serve` runs (each is a Python process of ~95 MiB)."""

_LEVELS = ("debug", "info", "warning", "error", "critical")


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    text = (env.get(name) or "").strip().lower()
    if not text:
        return None
    if text not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)} (got {text!r})")
    return text


def _path(env: Mapping[str, str], name: str) -> Path | None:
    text = (env.get(name) or "").strip()
    return Path(text).expanduser() if text else None


def _number(
    env: Mapping[str, str],
    name: str,
    default: float,
    minimum: float,
    kind: type = int,
    *,
    maximum: float | None = None,
) -> float:
    text = env.get(name)
    if text is None or text.strip() == "":
        return kind(default)  # type: ignore[no-any-return]
    try:
        value = kind(text.strip())
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise InvalidInput(f"{name} must be {noun} (got {text!r})") from None
    if value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum} (got {text!r})")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name} must be at most {maximum} (got {text!r})")
    return value  # type: ignore[no-any-return]
