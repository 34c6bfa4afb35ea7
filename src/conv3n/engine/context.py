"""`NodeContext`: the engine's implementation of `conv3n.sdk.Context`, one per attempt.

Created by `runner.Run` just before a block runs; gives the block capabilities (HTTP, secrets,
sub-graphs, sub-workflows), never the engine itself.
"""

import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from conv3n import expr
from conv3n.engine import attempt, tasks
from conv3n.errors import BlockError, ExpressionError, SecretNotFound
from conv3n.model import JSON, WebhookResponse

if TYPE_CHECKING:
    import aiohttp

    from conv3n.compiler import PlanNode
    from conv3n.engine.runner import Run

T = TypeVar("T")


class NodeContext:
    """What one attempt of one node may see and do."""

    __slots__ = ("_attempt", "_node", "_run")

    def __init__(self, run: "Run", node: "PlanNode", attempt: int):
        self._run = run
        self._node = node
        self._attempt = attempt

    @property
    def node_id(self) -> str:
        """This node's id."""
        return self._node.id

    @property
    def execution_id(self) -> str:
        """The execution's id."""
        return self._run.execution_id

    @property
    def attempt(self) -> int:
        """1-based attempt number."""
        return self._attempt

    @property
    def idempotency_key(self) -> str:
        """`{execution_id}:{node_id}`, plus `:{index}` per enclosing loop item."""
        return f"{self._run.execution_id}:{self._node.id}{self._run.key_suffix}"

    @property
    def input(self) -> JSON:
        """The single activated predecessor's data, or the execution input for a start node."""
        return self._run.input_of(self._node)

    @property
    def inputs(self) -> Mapping[str, JSON]:
        """Every activated predecessor's data by id, in finishing order."""
        return self._run.inputs_of(self._node)

    @property
    def vars(self) -> MutableMapping[str, JSON]:
        """The execution's `$vars`; writes are also kept in this node's record, so a resumed
        execution that reuses the record gets them back."""
        return _RecordingVars(self._run, self._node.index)

    @property
    def log(self) -> logging.Logger:
        """A logger for this node (the execution id is in the logger's name)."""
        return logging.getLogger(f"conv3n.node.{self._node.id}")

    @property
    def http(self) -> "aiohttp.ClientSession":
        """The engine's shared HTTP client."""
        return self._run.engine.http

    @property
    def files_root(self) -> Path | None:
        """The only folder file blocks may touch."""
        return self._run.engine.options.files_root

    @property
    def cache_dir(self) -> Path | None:
        """Where caches that outlive the process live."""
        return self._run.engine.options.cache_dir

    def shared(self, key: str, create: Callable[[], T]) -> T:
        """A process-wide object made once per key; closed by `Engine.aclose()`."""
        return self._run.engine.shared(key, create)

    async def secret(self, name: str) -> str:
        """A stored secret's value."""
        secrets = self._run.engine.secrets
        value = secrets.get(name) if isinstance(secrets, Mapping) else None
        if value is None:
            raise SecretNotFound(f"no secret named {name!r}", details={"name": name})
        return str(value)

    async def sleep(self, seconds: float) -> None:
        """Wait on the engine's clock."""
        await self._run.engine.clock.sleep(seconds)

    async def sleep_until(self, until: datetime) -> None:
        """Wait until a time. A wait longer than the engine's `park_after_s` parks the
        execution durably (status `waiting`); when it is resumed this node runs again and this
        call returns at once, the original deadline being kept in the node's record."""
        run = self._run
        clock = run.engine.clock
        previous = run.prior.get(self._node.id) if run.parent is None else None
        if previous is not None and isinstance(previous.data, dict):
            stored = previous.data.get(attempt.PARKED_KEY)
            if isinstance(stored, str):
                until = datetime.fromisoformat(stored)
        remaining = (until - clock.now()).total_seconds()
        if remaining <= 0:
            return
        park_after = run.engine.options.park_after_s
        # loop bodies are not journaled node by node, so they wait in memory
        if park_after is not None and remaining > park_after and run.parent is None:
            raise attempt.Parked(until)
        await clock.sleep(remaining)

    async def wait_for_resume(self, until: datetime) -> tuple[bool, JSON]:
        """Park the execution until it is resumed with a payload or `until` passes.

        Returns `(True, payload)` when resumed, `(False, None)` when the deadline passed first.

        Raises:
            BlockError: the execution cannot park (no storage, or inside a loop body).
        """
        run = self._run
        previous = run.prior.get(self._node.id) if run.parent is None else None
        if previous is not None and isinstance(previous.data, dict):
            if attempt.PAYLOAD_KEY in previous.data:
                return True, previous.data[attempt.PAYLOAD_KEY]
            stored = previous.data.get(attempt.PARKED_KEY)
            if isinstance(stored, str):
                until = datetime.fromisoformat(stored)
                if until <= run.engine.clock.now():
                    return False, None
        if run.parent is not None:
            raise BlockError("std/wait cannot run inside a loop body: its items are not stored")
        if run.engine.options.park_after_s is None:
            raise BlockError(
                "std/wait needs a stored execution that can be resumed: run it on a server "
                "(conv3n serve) or with `conv3n run --store`"
            )
        raise attempt.Parked(until, for_resume=True)

    def respond(self, response: WebhookResponse) -> None:
        """Set the webhook response (and with it the execution's output)."""
        self._run.top().response = response
        self._run.note_effect(self._node.index, "response", response.model_dump())

    def evaluate(self, expression: str, **names: Any) -> JSON:
        """Evaluate `expression` (no braces) in this node's scope, with extra names."""
        try:
            compiled = expr.compile_expression(expression)
            scope = self._run.scope.child(**names) if names else self._run.scope
            return expr.to_json_value(expr.evaluate(compiled, scope))
        except expr.ParseError as exc:
            raise ExpressionError(exc.message, expression=exc.expression) from None
        except expr.EvalError as exc:
            raise ExpressionError(str(exc), expression=expression) from None

    async def run_subgraph(
        self, field: str, items: Sequence[JSON], *, concurrency: int = 1
    ) -> list[JSON]:
        """Run the compiled sub-graph of config `field` once per item; results in item order.

        Raises:
            BlockError: an item's body failed (its index and node are in `details`).
        """
        subplan = self._node.subplans[field]
        run = self._run
        results: list[JSON] = [None] * len(items)

        async def one(index: int) -> None:
            results[index] = await run.run_item(subplan, items[index], index)

        if concurrency <= 1 or len(items) <= 1:
            for index in range(len(items)):
                await one(index)
            return results
        next_index = iter(range(len(items)))

        async def worker() -> None:
            for index in next_index:
                await one(index)

        try:
            async with tasks.TaskGroup() as group:
                for number in range(min(concurrency, len(items))):
                    group.create_task(worker(), name=f"{self.idempotency_key}:worker{number}")
        except* BlockError as failures:
            raise failures.exceptions[0] from None
        return results

    async def run_workflow(self, ref: str, input: JSON, *, wait: bool = True) -> JSON:
        """Run another workflow as a child execution; its output, or `{execution_id}`."""
        return await self._run.engine.run_child(self._run, ref, input, wait=wait)


class _RecordingVars(MutableMapping[str, JSON]):
    """`$vars` as a block sees it: writes go to the execution and into the node's effects."""

    __slots__ = ("_index", "_run")

    def __init__(self, run: "Run", index: int):
        self._run = run
        self._index = index

    def __getitem__(self, key: str) -> JSON:
        return self._run.vars[key]

    def __setitem__(self, key: str, value: JSON) -> None:
        self._run.vars[key] = value
        self._run.note_effect(self._index, "vars", {key: value})

    def update(self, values: Any = (), /, **more: JSON) -> None:
        """Several writes, kept in the node's effects at once (std/set's path)."""
        changes = dict(values, **more)
        self._run.vars.update(changes)
        self._run.note_effect(self._index, "vars", changes)

    def __delitem__(self, key: str) -> None:
        del self._run.vars[key]
        self._run.note_effect(self._index, "vars", {key: None})

    def __iter__(self) -> Iterator[str]:
        return iter(self._run.vars)

    def __len__(self) -> int:
        return len(self._run.vars)
