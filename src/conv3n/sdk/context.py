"""`Context`: everything a running block may see and use. Implemented by the engine only."""

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from conv3n.model import JSON, WebhookResponse

if TYPE_CHECKING:
    import logging
    from datetime import datetime
    from pathlib import Path

    import aiohttp

T = TypeVar("T")


class Context(Protocol):
    """What a block gets besides its config.

    Reading: `node_id`, `attempt`, `idempotency_key`, `input` (the single predecessor's data),
    `inputs` (every activated predecessor's data, in the order they finished), `vars`.
    Doing: `http` (shared client), `secret()`, `sleep()`, `respond()`, `shared()` (process-wide
    resources such as connection or worker pools), and the capabilities of structural blocks:
    `run_subgraph()`, `run_workflow()`.
    Places: `files_root` (the only folder std/file may touch), `cache_dir` (caches that outlive
    the process, such as code environments).
    """

    @property
    def node_id(self) -> str:
        """This node's id."""

    @property
    def execution_id(self) -> str:
        """The execution's id."""

    @property
    def attempt(self) -> int:
        """1 for the first attempt, 2 for the first retry, ..."""

    @property
    def idempotency_key(self) -> str:
        """`{execution_id}:{node_id}` (loop bodies add `:{index}`): pass it on to remote sides."""

    @property
    def input(self) -> JSON:
        """The data of the single activated predecessor (None for a start node)."""

    @property
    def inputs(self) -> Mapping[str, JSON]:
        """Every activated predecessor's data by node id, in the order they finished."""

    @property
    def vars(self) -> MutableMapping[str, JSON]:
        """The execution's `$vars` (std/set writes here)."""

    @property
    def log(self) -> "logging.Logger":
        """A logger bound to this execution and node."""

    @property
    def http(self) -> "aiohttp.ClientSession":
        """The engine's shared aiohttp session (one connection pool for every node)."""

    @property
    def files_root(self) -> "Path | None":
        """CONV3N_FILES_ROOT: the only folder file blocks may touch (None: file access is off)."""

    @property
    def cache_dir(self) -> "Path | None":
        """A folder for caches that outlive the process, such as code environments keyed by a
        hash of their requirements (None: use a temporary folder)."""

    def shared(self, key: str, create: "Callable[[], T]") -> "T":
        """A process-wide object made once per `key` by `create()` (connection pools, worker
        pools) and shared by every execution. The engine closes it when it shuts down: it awaits
        `aclose()` or `dispose()`, or calls `close()`, whichever the object has."""

    async def secret(self, name: str) -> str:
        """A stored secret's value (raises SecretNotFound)."""

    async def sleep(self, seconds: float) -> None:
        """Wait on the engine's clock (tests fast-forward it)."""

    async def sleep_until(self, until: "datetime") -> None:
        """Wait until a time. With storage, a wait longer than the engine's parking threshold
        parks the execution durably as `waiting` (it survives restarts); on resume the block
        runs again and this call returns at once, the first deadline being kept."""

    async def wait_for_resume(self, until: "datetime") -> tuple[bool, JSON]:
        """Park the execution durably as `waiting` until it is resumed with a payload
        (`POST /api/executions/{id}/resume`) or `until` passes; the block then runs again and
        this call returns `(True, payload)` or `(False, None)` at once. Needs storage."""

    def respond(self, response: WebhookResponse) -> None:
        """Set the webhook's HTTP response and the execution's output (std/respond)."""

    async def run_subgraph(
        self, field: str, items: Sequence[JSON], *, concurrency: int = 1
    ) -> list[JSON]:
        """Run the sub-graph held in config `field` once per item, results in item order."""

    async def run_workflow(self, ref: str, input: JSON, *, wait: bool = True) -> JSON:
        """Run another workflow (a file path relative to this one, or a stored id)."""

    def evaluate(self, expression: str, **names: Any) -> JSON:
        """Evaluate an expression in this node's scope with extra names (e.g. `item`)."""
