"""One attempt of one node: render the config, validate it, run the block, classify the result.

Called by `runner.Run` for every attempt. Returns an `Outcome`; never raises except
`CancelledError`, which always propagates.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from conv3n import expr
from conv3n.compiler import PlanNode
from conv3n.compiler.document import pydantic_problems
from conv3n.engine.redact import Redactor
from conv3n.errors import BlockError, ConfigInvalid, Conv3nError, ExpressionError, NodeTimeout
from conv3n.model import ErrorInfo, NodeRecord, NodeStatus
from conv3n.sdk import ERROR_PORT, Route

log = logging.getLogger("conv3n.engine")


@dataclass(slots=True)
class Outcome:
    """What one attempt came to (not frozen: one is made per attempt, and a frozen
    dataclass sets each field through `object.__setattr__`).

    Attributes:
        ok: the block returned a value.
        data: that value (None on failure).
        port: the output port it chose (`main` unless it returned a Route).
        error: the error, on failure.
        retryable: whether the retry policy may try again.
        retry_after_ms: a delay the remote side asked for (HTTP Retry-After).
    """

    ok: bool
    data: Any = None
    port: str = "main"
    error: ErrorInfo | None = None
    retryable: bool = False
    retry_after_ms: float | None = None
    parked_until: datetime | None = None
    parked_for_resume: bool = False


class Parked(BaseException):
    """A block's wait is long enough to park the execution (raised by `ctx.sleep_until`).

    A BaseException, so a block's own `except Exception` cannot swallow it.
    """

    def __init__(self, until: datetime, *, for_resume: bool = False):
        super().__init__(until.isoformat())
        self.until = until
        self.for_resume = for_resume


PARKED_KEY = "$parked_until"
"""Key of the data a parked node's record keeps: when its wait ends."""

WAIT_KEY = "$wait"
"""Marks a parked node that waits for a resume with a payload (std/wait), not only for time."""

PAYLOAD_KEY = "$resume_payload"
"""Where a resume puts its payload in a waiting node's record, for the node's next run."""


def render_config(pnode: PlanNode, scope: expr.Scope) -> BaseModel:
    """The node's config rendered and validated.

    Raises:
        ExpressionError: an expression failed (quoted, with its config path).
        ConfigInvalid: the rendered config does not match the block's model.
    """
    if pnode.static_config is not None:
        return pnode.static_config
    try:
        raw = pnode.config.render(scope)
    except expr.RenderError as exc:
        raise ExpressionError(
            f"config.{expr_path(exc.path)}: {exc.message}", expression=exc.expression
        ) from None
    try:
        return pnode.spec.config_model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigInvalid(pydantic_problems(exc, ("config",))) from None


def expr_path(path: tuple[str | int, ...]) -> str:
    """`url`, `headers.X`, `cases[0].equals`."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


async def run_attempt(
    pnode: PlanNode, scope: expr.Scope, make_context: Callable[[], Any]
) -> Outcome:
    """Run one attempt of `pnode` and classify what happened."""
    node_id = pnode.id
    deadline: asyncio.Timeout | None = None
    try:
        config = render_config(pnode, scope)
        ctx = make_context()
        timeout = pnode.timeout_s
        if timeout is None:
            result = await pnode.spec.run(ctx, config)
        else:
            deadline = asyncio.timeout(timeout)
            async with deadline:
                result = await pnode.spec.run(ctx, config)
    except Parked as parked:
        return Outcome(ok=False, parked_until=parked.until, parked_for_resume=parked.for_resume)
    except BlockError as exc:
        return Outcome(
            ok=False,
            error=exc.to_info(node_id),
            retryable=exc.retryable,
            retry_after_ms=exc.retry_after_ms,
        )
    except TimeoutError as exc:
        # Only our own deadline is a NodeTimeout; a TimeoutError the block let escape (a
        # library's own timeout) is a crash like any other foreign exception.
        if deadline is None or not deadline.expired():
            return _crashed(pnode, exc)
        timeout_error = NodeTimeout(
            f"node {node_id!r} did not finish within {pnode.node.timeout_ms} ms"
        )
        return Outcome(ok=False, error=timeout_error.to_info(node_id), retryable=True)
    except Conv3nError as exc:
        return Outcome(ok=False, error=exc.to_info(node_id), retryable=False)
    except Exception as exc:  # noqa: BLE001 - any other exception is `block_crashed` (STYLE 3.5)
        return _crashed(pnode, exc)
    if type(result) is Route:
        if result.port not in pnode.ports:
            wrong = BlockError(f"block chose port {result.port!r}, which node {node_id!r} lacks")
            return Outcome(ok=False, error=wrong.to_info(node_id))
        data = result.data
        port = result.port
    else:
        data = result
        port = "main"
    try:
        data = expr.to_json_value(data)
    except expr.EvalError as exc:
        not_json = BlockError(f"block returned a value that is not JSON: {exc}")
        return Outcome(ok=False, error=not_json.to_info(node_id))
    return Outcome(ok=True, data=data, port=port)


def _crashed(pnode: PlanNode, exc: Exception) -> Outcome:
    """An unknown exception from a block: `block_crashed`, retryable, traceback to the log."""
    log.exception(
        "block %s crashed in node %s", pnode.node.type, pnode.id, extra={"node_id": pnode.id}
    )
    crash = ErrorInfo(
        type="block_crashed",
        message=f"{type(exc).__name__}: {exc}",
        node=pnode.id,
        details={"exception": type(exc).__name__},
    )
    return Outcome(ok=False, error=crash, retryable=True)


def redact(outcome: Outcome, redactor: Redactor) -> Outcome:
    """The outcome with stored secret values masked in its data and error."""
    error = outcome.error
    if error is not None:
        error = ErrorInfo.model_validate(redactor.value(error.model_dump()))
    return dataclasses.replace(outcome, data=redactor.value(outcome.data), error=error)


_MAIN = frozenset({"main"})
_ERROR = frozenset({ERROR_PORT})
_NONE: frozenset[str] = frozenset()


def final_record(
    outcome: Outcome,
    on_error: str,
    attempts: int,
    started_at: datetime,
    finished_at: datetime,
    duration_ms: float,
    effects: dict[str, Any] | None,
) -> tuple[NodeRecord, frozenset[str]]:
    """A finished node's record and the ports it activates (SPEC §2's `on_error`)."""
    if outcome.ok:
        port = outcome.port
        ports = _MAIN if port == "main" else frozenset((port,))
        record = NodeRecord(
            status=NodeStatus.SUCCESS,
            data=outcome.data,
            attempts=attempts,
            started_at=started_at,
            finished_at=finished_at,
            duration_ms=duration_ms,
            ports=[port],
            effects=effects,
        )
        return record, ports
    ports = {"continue": _MAIN, "route": _ERROR}.get(on_error, _NONE)
    record = NodeRecord(
        status=NodeStatus.ERROR,
        error=outcome.error,
        attempts=attempts,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=duration_ms,
        ports=sorted(ports),
        effects=effects,
    )
    return record, ports


def replayable(record: NodeRecord) -> bool:
    """A stored node result that a resumed execution reuses instead of re-running."""
    if record.status is NodeStatus.SUCCESS or record.status is NodeStatus.SKIPPED:
        return True
    return record.status is NodeStatus.ERROR and bool(record.ports)
