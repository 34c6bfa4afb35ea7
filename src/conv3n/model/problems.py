"""A validation problem with the exact place it was found, e.g. `nodes[2].config.url`."""

from collections.abc import Sequence
from dataclasses import dataclass


def format_path(loc: Sequence[str | int]) -> str:
    """Render a location tuple the way users read it.

    >>> format_path(("nodes", 2, "config", "url"))
    'nodes[2].config.url'
    """
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a document, and where.

    Attributes:
        path: location tuple, e.g. ("nodes", 2, "config", "url").
        message: what is wrong, in words a user can act on.
    """

    path: tuple[str | int, ...]
    message: str

    @property
    def where(self) -> str:
        """The location as text (`nodes[2].config.url`), or `(document)` for the root."""
        return format_path(self.path) or "(document)"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_json(self) -> dict[str, str]:
        """The wire form used by `--json` output and the API."""
        return {"path": self.where, "message": self.message}
