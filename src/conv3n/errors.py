"""The one error tree of conv3n.

Each class states its wire `type`, HTTP status and CLI exit code; its docstring is the default
message. `to_info()` gives SPEC's `{type, message, node, details}`.

    Conv3nError                        type                http  exit
    ├── InvalidInput (ValueError)      invalid_input       400   2
    │   └── WorkflowInvalid            workflow_invalid    422   2   .problems
    ├── BlockRegistryError             block_registry      500   2
    ├── NotFound (LookupError)         not_found           404   1
    │   ├── WorkflowNotFound           workflow_not_found
    │   ├── ExecutionNotFound          execution_not_found
    │   ├── SecretNotFound             secret_not_found
    │   └── BlockTypeNotFound          block_type_not_found
    ├── Conflict                       conflict            409   1
    ├── Unauthorized                   unauthorized        401   1
    ├── Unavailable                    unavailable         503   1
    │   └── Overloaded                 overloaded          429       .retry_after_s
    └── ExecutionError                 execution_error     500   1
        ├── BlockError                 block_error         .retryable .details
        │   ├── NodeTimeout            timeout             retryable
        │   ├── ExpressionError        expression_error    not retryable; quotes the expression
        │   └── ConfigInvalid          config_invalid      not retryable; carries problems
        ├── ExecutionCancelled         cancelled
        └── ExecutionFailed            execution_failed    carries the execution record

Foreign exceptions are translated where their library is owned; the engine records any other
exception escaping a block as `block_crashed` (retryable, traceback to the log only).
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from conv3n.model import ErrorInfo, Problem

if TYPE_CHECKING:
    from conv3n.model import ExecutionRecord


class Conv3nError(Exception):
    """Something went wrong in conv3n."""

    type: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or (self.__class__.__doc__ or self.type).strip().splitlines()[0]
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)

    def to_info(self, node: str | None = None) -> ErrorInfo:
        """The SPEC's error object for records, API bodies and `--json` output."""
        return ErrorInfo(type=self.type, message=self.message, node=node, details=self.details)


class InvalidInput(Conv3nError, ValueError):
    """The input is not valid."""

    type = "invalid_input"
    http_status = 400
    exit_code = 2


class WorkflowInvalid(InvalidInput):
    """The workflow is not valid."""

    type = "workflow_invalid"
    http_status = 422

    def __init__(self, problems: Iterable[Problem], message: str | None = None):
        self.problems = list(problems)
        count = len(self.problems)
        summary = message or f"the workflow has {count} problem{'s' if count != 1 else ''}"
        super().__init__(summary, details={"problems": [p.to_json() for p in self.problems]})

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  {p}" for p in self.problems)])


class BlockRegistryError(Conv3nError):
    """A block package is declared wrongly or clashes with another."""

    type = "block_registry"
    exit_code = 2


class NotFound(Conv3nError, LookupError):
    """Not found."""

    type = "not_found"
    http_status = 404


class WorkflowNotFound(NotFound):
    """No workflow has this id."""

    type = "workflow_not_found"


class ExecutionNotFound(NotFound):
    """No execution has this id."""

    type = "execution_not_found"


class SecretNotFound(NotFound):
    """No secret has this name."""

    type = "secret_not_found"


class BlockTypeNotFound(NotFound):
    """No block of this type is registered."""

    type = "block_type_not_found"


class Conflict(Conv3nError):
    """The request conflicts with the current state."""

    type = "conflict"
    http_status = 409


class Unauthorized(Conv3nError):
    """Authentication is required."""

    type = "unauthorized"
    http_status = 401


class Unavailable(Conv3nError):
    """A service conv3n depends on is unavailable."""

    type = "unavailable"
    http_status = 503


class Overloaded(Unavailable):
    """Too much work is waiting: retry later."""

    type = "overloaded"
    http_status = 429

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        retry_after_s: int = 1,
    ):
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class ExecutionError(Conv3nError):
    """The execution failed."""

    type = "execution_error"


class BlockError(ExecutionError):
    """The block failed.

    Block authors raise this. `retryable=True` lets the node's retry policy try again;
    `details` carries JSON-safe facts for the record (status codes, ids).
    """

    type = "block_error"
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        retryable: bool | None = None,
        details: dict[str, Any] | None = None,
        retry_after_ms: float | None = None,
    ):
        super().__init__(message, details=details)
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after_ms = retry_after_ms


class NodeTimeout(BlockError):
    """The node did not finish within its timeout."""

    type = "timeout"
    default_retryable = True


class ExpressionError(BlockError):
    """An expression could not be evaluated."""

    type = "expression_error"

    def __init__(self, message: str, *, expression: str | None = None, **details: Any):
        if expression is not None:
            details["expression"] = expression
            message = f"{message} in {{{{ {expression} }}}}"
        super().__init__(message, retryable=False, details=details)


class ConfigInvalid(BlockError):
    """The node's configuration is not valid."""

    type = "config_invalid"

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__(
            "; ".join(str(p) for p in self.problems) or None,
            retryable=False,
            details={"problems": [p.to_json() for p in self.problems]},
        )


class ExecutionCancelled(ExecutionError):
    """The execution was cancelled."""

    type = "cancelled"


class ExecutionFailed(ExecutionError):
    """The execution ended with an error."""

    type = "execution_failed"

    def __init__(self, record: "ExecutionRecord"):
        self.record = record
        message = record.error.message if record.error else None
        super().__init__(message, details={"execution_id": record.execution_id})
