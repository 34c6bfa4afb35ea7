"""Confinement of std/file to its files root: path checks and symlink-safe opening.

A path is first checked as text (`check_relative`: no NUL, not absolute, no `..`, bounded
length), then resolved against the root (`Root.locate`): `os.path.realpath` follows every
symbolic link, and a result outside the root is refused. The resolved, link-free path is then
walked one component at a time from a descriptor of the root, each component opened with
`O_NOFOLLOW` relative to its parent's descriptor (`openat`). A link swapped in after the check
(TOCTOU) therefore makes the walk fail with ELOOP/ENOTDIR instead of leaving the root: the
check decides, the walk refuses anything that no longer matches it. Links inside the root that
stay inside it keep working, because the walk follows the already-resolved path.

Everything here blocks: callers run it in a worker thread (`asyncio.to_thread`).
"""

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from conv3n.sdk import BlockError

MAX_PATH_CHARS = 1024
"""Longest path accepted (characters); far below PATH_MAX, enough for real folder trees."""
MAX_NAME_BYTES = 255
"""Longest single component (NAME_MAX on Linux and macOS)."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def check_relative(path: str, *, allow_root: bool = False) -> str:
    """The path as a normalized `a/b/c` string, or ValueError saying what is wrong with it.

    Used by the config models, so the problem is reported at `config.path` before any I/O.
    """
    if "\x00" in path:
        raise ValueError("the path may not contain NUL bytes")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"the path is longer than {MAX_PATH_CHARS} characters")
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise ValueError("the path must be relative to the files root, not absolute")
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError("the path may not contain `..`")
    for part in parts:
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise ValueError(f"a path component is longer than {MAX_NAME_BYTES} bytes")
    if not parts and not allow_root:
        raise ValueError("the path names the files root itself, not a file in it")
    return "/".join(parts)


@dataclass(frozen=True, slots=True)
class Located:
    """A path inside the root: its parts as resolved (links followed) and as the user wrote it."""

    parts: tuple[str, ...]
    shown: str

    @property
    def name(self) -> str:
        """The last component ('' for the root itself)."""
        return self.parts[-1] if self.parts else ""


class Root:
    """The files root: locating paths inside it and opening their parent folders safely."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.path = Path(os.path.realpath(root))

    def locate(self, relative: str, *, follow_last: bool = True) -> Located:
        """Resolve `relative` (already checked) through any links; refused if it leaves the root.

        With `follow_last=False` only the folders are resolved and the last component is kept
        as named, so delete and move act on a link itself, never on what it points to.
        """
        if not follow_last and relative:
            folder, _, last = relative.rpartition("/")
            parent = self.locate(folder)
            return Located((*parent.parts, last), relative)
        resolved = Path(os.path.realpath(self.path / relative))
        try:
            inside = resolved.relative_to(self.path)
        except ValueError:
            raise BlockError(
                f"{relative!r} leads outside the files root (through a symbolic link)",
                details={"path": relative},
            ) from None
        return Located(tuple(p for p in inside.parts if p not in ("", ".")), relative or ".")

    def relative(self, absolute: str) -> str:
        """A path under the root as the root-relative `a/b` form."""
        return Path(absolute).relative_to(self.path).as_posix()

    @contextlib.contextmanager
    def folder(self, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder `parts` (under the root), opened without following links.

        With `create`, missing folders are made (each relative to its parent's descriptor).
        """
        fd = os.open(self.path, _DIR_FLAGS)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):  # a concurrent writer made it
                        os.mkdir(part, 0o777, dir_fd=fd)
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def parent(self, located: Located, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder holding `located` (see `folder`)."""
        with self.folder(located.parts[:-1], create=create) as fd:
            yield fd


def kind(mode: int) -> str:
    """`file`, `directory` or `other` for a stat mode."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "other"


def os_error(exc: OSError, shown: str) -> BlockError:
    """A filesystem error as the node's error, naming the path (never the root's location)."""
    messages = {
        errno.ENOENT: "does not exist",
        errno.EEXIST: "already exists (set overwrite: true to replace it)",
        errno.EISDIR: "is a directory",
        errno.ENOTDIR: "has a part that is not a directory (or changed while in use)",
        errno.ELOOP: "is, or passes through, a symbolic link that loops or changed while in use",
        errno.ENOTEMPTY: "is a directory that is not empty (set recursive: true to delete it)",
        errno.EACCES: "is not accessible (permission denied)",
        errno.EPERM: "is not accessible (operation not permitted)",
        errno.ENOSPC: "cannot be written: no space left on the device",
        errno.ENAMETOOLONG: "is too long for the filesystem",
    }
    code = exc.errno or 0
    text = messages.get(code, exc.strerror or type(exc).__name__)
    return BlockError(
        f"{shown!r} {text}",
        retryable=code in (errno.EAGAIN, errno.EBUSY, errno.EINTR),
        details={"path": shown, "errno": errno.errorcode.get(code, str(code))},
    )
