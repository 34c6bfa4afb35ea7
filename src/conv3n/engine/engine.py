"""`Engine`: the long-lived owner of what executions share (journal, clock, HTTP pool, secrets).

Created once by the runtime (or a test); `execute()` runs one Plan to its record. Also owns
fire-and-forget child executions, which `aclose()` waits for.
"""

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from conv3n.compiler import Plan
from conv3n.engine import ids
from conv3n.engine.clock import Clock, SystemClock
from conv3n.engine.journal import Journal, NullJournal
from conv3n.engine.redact import Redactor
from conv3n.engine.runner import Run
from conv3n.errors import BlockError, SecretNotFound
from conv3n.model import JSON, ExecutionRecord, ExecutionStatus, NodeRecord

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")
log = logging.getLogger("conv3n.engine")


class WorkflowSource(Protocol):
    """Finds the workflows std/subworkflow names (files for `conv3n run`, storage for a server)
    and hears of the child executions run from them (storage stores each as its own
    execution, with `mode: subworkflow` and its `parent_id`)."""

    async def load(self, ref: str, *, relative_to: str | None) -> Plan:
        """The compiled workflow `ref` (a path relative to `relative_to`, or a stored id)."""

    async def child_started(
        self, plan: Plan, input: JSON, *, execution_id: str, parent_id: str
    ) -> None:
        """A child execution of `plan` (as `load` returned it) is about to run."""

    def child_finished(self, execution_id: str) -> None:
        """That child execution stopped running here (finished, failed, or was interrupted)."""


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Knobs the runtime sets from Settings.

    Attributes:
        env: the environment variables visible as `$env` (already allow-listed).
        max_depth: how deep sub-workflows may nest.
        http_timeout_s: default timeout of the shared HTTP client.
        http_max_connections: size of the shared connection pool.
        park_after_s: a `ctx.sleep_until` longer than this parks the execution as `waiting`
            (its journal must be durable: storage resumes it when it is due); None never parks.
        files_root: the only folder file blocks may touch (None: file access is off).
        cache_dir: where blocks keep caches that outlive the process (code environments).
        public_url: the server's base URL, for `$execution.resume_url` (None: no server).
    """

    env: Mapping[str, str] = field(default_factory=dict)
    max_depth: int = 10
    http_timeout_s: float = 30.0
    http_max_connections: int = 100
    park_after_s: float | None = None
    files_root: Path | None = None
    cache_dir: Path | None = None
    public_url: str | None = None


class Engine:
    """Runs plans. One per process; safe to share between concurrent executions."""

    def __init__(
        self,
        *,
        journal: Journal | None = None,
        clock: Clock | None = None,
        secrets: Mapping[str, str] | None = None,
        workflows: WorkflowSource | None = None,
        options: EngineOptions | None = None,
        http: "aiohttp.ClientSession | None" = None,
        redactor: Redactor | None = None,
    ):
        self.journal: Journal = journal or NullJournal()
        self.clock: Clock = clock or SystemClock()
        self.secrets: Mapping[str, str] = secrets if secrets is not None else {}
        self.redactor = redactor or Redactor(self.secrets.values())
        self.workflows = workflows
        self.options = options or EngineOptions()
        self.env: Mapping[str, str] = dict(self.options.env)
        self._http = http
        self._own_http = http is None
        self._background: set[asyncio.Task[Any]] = set()
        self._running: dict[str, Run] = {}
        self._shared: dict[str, Any] = {}

    @property
    def http(self) -> "aiohttp.ClientSession":
        """The shared HTTP client, created on first use (so runs without HTTP never import it).

        aiohttp rather than httpx: a tenth of the CPU per request (decision 0012). It follows
        redirects and decompresses. `trust_env` is off: with it on, aiohttp reads ~/.netrc and
        the proxy variables again for every request, in a thread; std/http_request reads the
        proxy variables once instead.
        """
        if self._http is None:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self.options.http_max_connections)
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.options.http_timeout_s),
            )
        return self._http

    def shared(self, key: str, create: Callable[[], T]) -> T:
        """A process-wide object made once per key (blocks' pools); `aclose()` closes it."""
        try:
            return self._shared[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._shared[key] = create()
            return value

    async def execute(
        self,
        plan: Plan,
        input: JSON = None,
        *,
        mode: str = "manual",
        execution_id: str | None = None,
        prior: Mapping[str, NodeRecord] | None = None,
        depth: int = 0,
    ) -> ExecutionRecord:
        """Run `plan` to the end and return its record.

        Args:
            plan: a compiled workflow.
            input: `$input`.
            mode: how it was started (`manual`, `webhook`, `subworkflow`, ...).
            execution_id: a given id (resume, idempotent starts); a new one otherwise.
            prior: stored node records of an interrupted run: finished nodes are not re-run.
            depth: sub-workflow nesting depth.
        """
        run = Run(
            self,
            plan,
            execution_id=execution_id or ids.new_execution_id(),
            input=input,
            mode=mode,
            depth=depth,
            prior=prior,
        )
        return await self._execute(run)

    async def _execute(self, run: Run) -> ExecutionRecord:
        self._running[run.execution_id] = run
        try:
            return await run.execute()
        finally:
            self._running.pop(run.execution_id, None)

    async def secrets_value(self, name: str) -> str:
        """A stored secret's value (for triggers that reference one by name).

        Raises:
            SecretNotFound: no secret has this name.
        """
        value = self.secrets.get(name)
        if value is None:
            raise SecretNotFound(f"no secret named {name!r}", details={"name": name})
        return value

    def cancel(self, execution_id: str) -> bool:
        """Cancel a running execution; False if it is not running here."""
        run = self._running.get(execution_id)
        if run is None:
            return False
        run.cancel()
        return True

    async def run_child(self, parent: Run, ref: str, input: JSON, *, wait: bool) -> JSON:
        """std/subworkflow: run workflow `ref` as a child of `parent`."""
        if self.workflows is None:
            raise BlockError("sub-workflows are not available here (no workflow source)")
        if parent.depth + 1 > self.options.max_depth:
            raise BlockError(
                f"sub-workflows nest deeper than {self.options.max_depth} levels",
                details={"max_depth": self.options.max_depth},
            )
        source = self.workflows
        plan = await source.load(ref, relative_to=parent.plan.source)
        child_id = ids.new_execution_id()
        child = Run(
            self,
            plan,
            execution_id=child_id,
            input=input,
            mode="subworkflow",
            depth=parent.depth + 1,
        )
        await source.child_started(
            plan, input, execution_id=child_id, parent_id=parent.execution_id
        )
        if not wait:
            task = asyncio.create_task(
                self._execute_child(source, child), name=f"subworkflow:{child_id}"
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return {"execution_id": child_id}
        # The caller's top run records this child as cancelled if it stops while the child
        # runs (a sibling failed, its timeout, Engine.cancel), so no child stays `running`.
        top = parent
        while top.parent is not None:
            top = top.parent
        if top.children is None:
            top.children = set()
        children = top.children
        children.add(child)
        try:
            record = await self._execute_child(source, child)
        finally:
            if child.finished:
                children.discard(child)
        if record.status is not ExecutionStatus.SUCCESS:
            raise _child_failed(ref, child_id, record)
        return record.output

    async def _execute_child(self, source: WorkflowSource, child: Run) -> ExecutionRecord:
        try:
            return await self._execute(child)
        finally:
            source.child_finished(child.execution_id)

    async def aclose(self) -> None:
        """Wait for fire-and-forget children, then close the HTTP pool."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        shared, self._shared = self._shared, {}
        for key, value in reversed(shared.items()):
            await _close(key, value)
        if self._http is not None and self._own_http:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> "Engine":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _close(key: str, value: Any) -> None:
    """Close a shared resource by whichever of `aclose`, `dispose` or `close` it has."""
    for name in ("aclose", "dispose", "close"):
        method = getattr(value, name, None)
        if callable(method):
            try:
                result = method()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # one resource failing to close must not stop the rest
                log.exception("closing shared resource %r failed", key)
            return


def _child_failed(ref: str, child_id: str, record: ExecutionRecord) -> BlockError:
    """The calling node's error for a failed child: the root cause, stated once.

    A child that failed because its own sub-workflow failed already names the root cause;
    wrapping it again at every level made a deep recursion repeat "sub-workflow ... failed"
    once per level and nest `details` as deep.
    """
    error = record.error
    cause: Any = error.model_dump() if error is not None else None
    if error is not None and "subworkflow" in error.details:
        cause = error.details.get("error")
    message = cause.get("message") if isinstance(cause, dict) else None
    return BlockError(
        f"sub-workflow {ref!r} failed: {message or record.status.value}",
        details={"subworkflow": ref, "execution_id": child_id, "error": cause},
    )
