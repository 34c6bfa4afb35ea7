"""Evaluate compiled expressions against a scope, turning every failure into an EvalError.

Called by `conv3n.expr.render` (block configs) and by blocks that evaluate expressions of
their own. Synchronous and allocation-light: this is the engine's hottest path.
"""

import re
from typing import Any

from conv3n.expr import kinds
from conv3n.expr.budget import Budget
from conv3n.expr.parse import Expression


class Scope:
    """The names an expression can see (SPEC §3): `$input`, `$node`, `$vars`, ...

    A plain slotted object: attribute reads are the fastest lookup Python has.
    """

    __slots__ = ("env", "execution", "index", "input", "item", "node", "now", "secrets", "vars")

    def __init__(
        self,
        *,
        input: Any = None,
        node: Any = None,
        vars: Any = None,
        secrets: Any = None,
        env: Any = None,
        execution: Any = None,
        now: Any = None,
        item: Any = None,
        index: Any = None,
    ):
        self.input = input
        self.node = node if node is not None else {}
        self.vars = vars if vars is not None else {}
        self.secrets = secrets if secrets is not None else {}
        self.env = env if env is not None else {}
        self.execution = execution if execution is not None else {}
        self.now = now
        self.item = item
        self.index = index

    def child(self, **changes: Any) -> "Scope":
        """A copy with some names replaced (loop bodies set `item`, `index` and `node`)."""
        clone = Scope.__new__(Scope)
        for name in Scope.__slots__:
            setattr(clone, name, changes[name] if name in changes else getattr(self, name))
        return clone


_PY_TYPES = re.compile(r"'(NoneType|int|float|str|dict|list|tuple|bool|datetime\.\w+)'")
_TYPE_WORDS = {
    "NoneType": "null",
    "int": "number",
    "float": "number",
    "str": "string",
    "dict": "object",
    "list": "list",
    "tuple": "list",
    "bool": "bool",
}
_MESSAGE_CHARS = 300
_CONCATENATE = re.compile(r'can only concatenate (\w+) \(not "(\w+)"\) to \w+')


def _friendly(message: str) -> str:
    """Python's wording in user terms (types named as in JSON), cut short: a message may quote a
    value, and values can be megabytes long."""
    if len(message) > _MESSAGE_CHARS:
        message = message[:_MESSAGE_CHARS] + "..."
    message = _CONCATENATE.sub(r"unsupported operand type(s) for +: '\1' and '\2'", message)
    return _PY_TYPES.sub(lambda m: _TYPE_WORDS.get(m.group(1), m.group(1).split(".")[-1]), message)


def evaluate(expression: Expression, scope: Scope, budget: Budget | None = None) -> Any:
    """The value of `expression` in `scope`.

    Args:
        expression: a compiled expression.
        scope: the names it can see.
        budget: shared by the expressions of one config render; by default a fresh one.

    Raises:
        EvalError: with a message in user terms (types named as in JSON).
    """
    try:
        if expression.needs_budget:
            return expression.function(scope, Budget() if budget is None else budget)
        return expression.function(scope, None)
    except kinds.EvalError:
        raise
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise kinds.EvalError(_friendly(str(exc)) or type(exc).__name__) from None
    except RecursionError:
        raise kinds.EvalError("expression nests too deeply") from None
    except MemoryError:
        raise kinds.EvalError("expression ran out of memory") from None
