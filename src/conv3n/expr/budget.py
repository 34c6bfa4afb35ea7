"""The budget of one evaluation: iteration steps, wall time and the size of what it builds.

Compiled expressions call it (as `_b`) around everything that iterates or allocates; see
`conv3n.expr.parse` for where. One budget serves one `evaluate` call, or one whole config render.
"""

from collections.abc import Iterable, Iterator
from time import monotonic
from typing import Any

from conv3n.expr import kinds, limits

_NO_TIME = f"evaluation took longer than {limits.MAX_SECONDS} s"
_NO_STEPS = f"more than {limits.MAX_STEPS:,} iteration steps"
_NO_SPACE = (
    f"the values built are too large (more than {limits.MAX_BUILT:,} size units: "
    f"a character counts 1, a list item or object entry {limits.ITEM_SIZE})"
)


class Budget:
    """Counts down steps and size, and watches a deadline; raises EvalError once one runs out."""

    __slots__ = ("deadline", "space", "steps")

    def __init__(self) -> None:
        self.steps = limits.MAX_STEPS
        self.space = limits.MAX_BUILT
        self.deadline = monotonic() + limits.MAX_SECONDS

    def _late(self) -> bool:
        return monotonic() > self.deadline

    def charge(self, units: int) -> None:
        """Count `units` of built size."""
        self.space -= units
        if self.space < 0:
            raise kinds.EvalError(_NO_SPACE)

    def tick(self) -> None:
        """Count one step (a key= call); the clock is read every 16 steps."""
        self.steps -= 1
        if self.steps < 0:
            raise kinds.EvalError(_NO_STEPS)
        if not self.steps & 15 and self._late():
            raise kinds.EvalError(_NO_TIME)

    def iterate(self, iterable: Any) -> Iterator[Any]:
        """Iterate `iterable` (objects give their keys), one step per item."""
        if not isinstance(iterable, Iterable) or isinstance(iterable, bytes):
            raise kinds.EvalError(f"cannot iterate over a {kinds.type_name(iterable)}")
        for item in iterable:
            self.steps -= 1
            if self.steps < 0:
                raise kinds.EvalError(_NO_STEPS)
            if not self.steps & 15 and self._late():
                raise kinds.EvalError(_NO_TIME)
            yield item

    def keep(self, value: Any) -> Any:
        """Charge a value put into a new list or object (or made by + or *) at its full size,
        shared parts counted every time: that is what it costs as JSON."""
        kind = type(value)
        if kind is str:
            units = limits.ITEM_SIZE + len(value)
        elif kind in kinds.SCALAR_TYPES:
            units = limits.ITEM_SIZE
        else:
            units = limits.ITEM_SIZE + kinds.measure(value, self.space)
        self.space -= units
        if self.space < 0:
            raise kinds.EvalError(_NO_SPACE)
        return value

    def key(self, value: Any) -> Any:
        """A key= lambda's result: one step, and kept (sorted() holds every key)."""
        self.tick()
        return self.keep(value)

    def made(self, value: Any) -> Any:
        """A function's or method's result: checks the clock and the per-value limits, and
        charges what the call allocated (two levels deep)."""
        if self._late():
            raise kinds.EvalError(_NO_TIME)
        kind = type(value)
        if kind is str or kind is list or kind is dict or kind is tuple:
            kinds.check_length(value)
            self.space -= kinds.outline(value)
            if self.space < 0:
                raise kinds.EvalError(_NO_SPACE)
        return value
