"""File triggers: watch a folder (and its sub-folders) with watchfiles; a file created,
modified or deleted starts an execution with `$input` `{event, path, relative_path}`.

Changes within `debounce_ms` are handled together, one event per file: `created` if the file
appeared (even if it was written to since), else `modified`; `deleted` if it is gone. The
folder must lie inside the files root (like std/file), so a workflow cannot list other parts
of the server's disk.
"""

import asyncio
import contextlib
import fnmatch
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conv3n.errors import InvalidInput
from conv3n.triggers.base import Checkpoint, Clock, Fire, TriggerState, no_checkpoint
from conv3n.triggers.schedule import error_text


def watched_folder(path: str, root: Path | None) -> Path:
    """The folder a file trigger watches: `path` resolved (relative to the files root).

    Raises:
        InvalidInput: it is outside the files root, missing, or not a folder.
    """
    given = Path(path).expanduser()
    if root is None:
        folder = given.resolve()
    else:
        root = root.resolve()
        folder = (root / given).resolve()
        if folder != root and root not in folder.parents:
            raise InvalidInput(
                f"{path} is outside the files root {root} (set CONV3N_FILES_ROOT to allow it)"
            )
    if not folder.exists():
        raise InvalidInput(f"the folder {folder} does not exist")
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    return folder


def events_of(changes: Iterable[tuple[Any, str]], folder: Path) -> list[tuple[str, Path]]:
    """One (event, path) per changed file, sorted by path (pure but for `exists` checks)."""
    from watchfiles import Change

    seen: dict[str, set[Any]] = {}
    for change, raw in changes:
        seen.setdefault(raw, set()).add(change)
    found = []
    for raw in sorted(seen):
        path = Path(raw)
        kinds = seen[raw]
        if path.is_dir() or path == folder or folder not in path.parents:
            continue
        exists = "created" if Change.added in kinds else "modified"
        found.append((exists if path.exists() else "deleted", path))
    return found


def matches(pattern: str | None, path: Path, folder: Path) -> bool:
    """Whether a file matches a trigger's glob: on its name, or on its relative path when the
    pattern holds a `/`."""
    if pattern is None:
        return True
    if "/" in pattern:
        return fnmatch.fnmatchcase(path.relative_to(folder).as_posix(), pattern)
    return fnmatch.fnmatchcase(path.name, pattern)


class FileTrigger:
    """Fires for each matching change in a folder, until cancelled."""

    def __init__(
        self,
        folder: Path,
        *,
        events: Iterable[str] = ("created", "modified", "deleted"),
        pattern: str | None = None,
        debounce_ms: int = 200,
        clock: Clock,
        checkpoint: Checkpoint = no_checkpoint,
    ):
        self.folder = folder
        self.events = frozenset(events)
        self.pattern = pattern
        self.debounce_ms = debounce_ms
        self._clock = clock
        self._checkpoint = checkpoint
        self._state = TriggerState()

    @property
    def state(self) -> TriggerState:
        """Status, fire count and the last change handled."""
        return self._state

    async def run(self, fire: Fire) -> None:
        """Watch the folder and fire for each matching change.

        The watcher runs in a thread; on cancellation it is told to stop (watchfiles checks
        its stop event every 50 ms) rather than abandoned.
        """
        stop = threading.Event()
        watcher = asyncio.create_task(self._watch(fire, stop), name=f"watch:{self.folder}")
        try:
            await asyncio.wait({watcher})
        except asyncio.CancelledError:
            stop.set()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            raise
        watcher.result()
        raise InvalidInput(f"watching {self.folder} ended (was the folder removed?)")

    async def _watch(self, fire: Fire, stop: threading.Event) -> None:
        from watchfiles import awatch

        changes_in = awatch(
            self.folder, debounce=self.debounce_ms, step=min(50, self.debounce_ms), stop_event=stop
        )
        # the watch is registered when the first step runs, before anyone sees this status
        self._state.status = "running"
        async for changes in changes_in:
            for event, path in events_of(changes, self.folder):
                if event in self.events and matches(self.pattern, path, self.folder):
                    await self._fire(fire, event, path)

    async def _fire(self, fire: Fire, event: str, path: Path) -> None:
        payload = {
            "event": event,
            "path": str(path),
            "relative_path": path.relative_to(self.folder).as_posix(),
        }
        try:
            await fire(payload)
        except Exception as exc:  # noqa: BLE001 - one failed start must not stop the watch
            self._state.last_error = error_text(exc)
            self._state.last_error_at = self._clock.now()
        else:
            self._state.fire_count += 1
            self._state.last_fire_at = self._clock.now()
        with contextlib.suppress(Exception):
            await self._checkpoint(self._state)


def build(
    definition: Any,
    *,
    files_root: Path | None,
    clock: Clock,
    checkpoint: Checkpoint = no_checkpoint,
) -> FileTrigger:
    """A file trigger from its checked definition (`definitions.FileTrigger`).

    Raises:
        InvalidInput: the folder is outside the files root, missing, or not a folder.
    """
    return FileTrigger(
        watched_folder(definition.path, files_root),
        events=definition.events,
        pattern=definition.pattern,
        debounce_ms=definition.debounce_ms,
        clock=clock,
        checkpoint=checkpoint,
    )
