"""Readiness and skip propagation (SPEC §2): which nodes run, which are skipped. Pure.

A node is decided once every predecessor has finished: it runs if at least one incoming
connection was activated, else it is skipped, and its own successors learn that it activated
nothing. The runner feeds `finish()` and carries out the decisions.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Frontier:
    """Counts of unfinished predecessors and activation flags for one execution.

    Attributes:
        successors: per node, {successor: ports of this node that activate it}.
        waiting: per node, how many predecessors have not finished yet.
        activated: per node, whether some finished predecessor activated it.
    """

    successors: tuple[dict[int, frozenset[str]], ...]
    waiting: list[int]
    activated: list[bool] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        successors: tuple[dict[int, frozenset[str]], ...],
        predecessors: Iterable[tuple[int, ...]],
    ) -> "Frontier":
        """A frontier where nothing has finished yet."""
        waiting = [len(p) for p in predecessors]
        return cls(successors=successors, waiting=waiting, activated=[False] * len(waiting))

    def starts(self) -> list[int]:
        """Nodes with no predecessors: they run first."""
        return [i for i, count in enumerate(self.waiting) if count == 0]

    def finish(self, node: int, ports: Iterable[str]) -> tuple[list[int], list[int]]:
        """Record that `node` finished having activated `ports` (empty if skipped or failed).

        Returns:
            (ready to run, skipped): the skipped ones already propagated, in order.
        """
        ready: list[int] = []
        skipped: list[int] = []
        stack = [(node, ports)]
        waiting, activated, successors = self.waiting, self.activated, self.successors
        while stack:
            current, active = stack.pop()
            for child, leading in successors[current].items():
                if active and not leading.isdisjoint(active):
                    activated[child] = True
                waiting[child] -= 1
                if waiting[child] == 0:
                    if activated[child]:
                        ready.append(child)
                    else:
                        skipped.append(child)
                        stack.append((child, ()))
        return ready, skipped
