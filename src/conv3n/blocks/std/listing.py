"""std/file `list`: glob patterns (`*`, `?`, `[abc]`, `**`) and a bounded walk of the root.

The walk uses `os.fwalk` from a descriptor of the starting folder with links not followed, so
it never leaves the root whatever the tree holds; symbolic links are neither followed nor
listed. Matching is on root-relative paths, so a pattern cannot name anything outside either.
Blocking: callers run `walk` in a worker thread.
"""

import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime

from conv3n.blocks.std import paths
from conv3n.model import JSON

MAX_SCANNED = 200_000
"""Entries a listing looks at before it stops (and says `truncated`)."""


def check_pattern(pattern: str) -> str:
    """The pattern, or ValueError if it is empty, absolute, holds `..` or NUL, or is too long."""
    if not pattern:
        raise ValueError("the pattern may not be empty")
    if "\x00" in pattern:
        raise ValueError("the pattern may not contain NUL bytes")
    if len(pattern) > paths.MAX_PATH_CHARS:
        raise ValueError(f"the pattern is longer than {paths.MAX_PATH_CHARS} characters")
    if pattern.startswith(("/", "\\")):
        raise ValueError("the pattern must be relative to the folder listed, not absolute")
    if ".." in pattern.replace("\\", "/").split("/"):
        raise ValueError("the pattern may not contain `..`")
    return pattern


def _class_end(part: str, start: int) -> int:
    """The index of the `]` closing the class that opens at `start`, or -1."""
    i = start + 1
    if i < len(part) and part[i] in "!^":
        i += 1
    if i < len(part) and part[i] == "]":
        i += 1  # a `]` first in the class is literal
    return part.find("]", i)


def _segment(part: str) -> str:
    """The regex of one path segment of a glob (`*` and `?` never match `/`)."""
    out: list[str] = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while i + 1 < len(part) and part[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := _class_end(part, i)) > 0:
            body = part[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
            if escaped.startswith("^"):
                escaped = "\\" + escaped
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled glob: its regex and how many folders deep it can reach (None: any)."""

    regex: re.Pattern[str]
    depth: int | None

    @classmethod
    def of(cls, pattern: str) -> "Pattern":
        """Compile a checked glob such as `**/*.csv` or `reports/2024-??.json`."""
        parts = [p for p in pattern.replace("\\", "/").split("/") if p not in ("", ".")]
        regex = ""
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "**":
                regex += ".*" if last else "(?:[^/]+/)*"
            else:
                regex += _segment(part) + ("" if last else "/")
        depth = None if "**" in parts else len(parts)
        return cls(re.compile(regex, re.DOTALL), depth)

    def matches(self, relative: str) -> bool:
        """Whether a path relative to the listed folder matches."""
        return self.regex.fullmatch(relative) is not None


@dataclass(frozen=True, slots=True)
class Listing:
    """What a walk found: entries in path order, and whether limits cut it short."""

    entries: list[JSON]
    truncated: bool


def walk(root: paths.Root, folder: paths.Located, pattern: Pattern, limit: int) -> Listing:
    """Up to `limit` entries under `folder` matching `pattern`, sorted by path, with
    `{path (root-relative), type, size, mtime}`."""
    entries: list[JSON] = []
    scanned = 0
    prefix = "/".join(folder.parts)
    with root.folder(folder.parts) as top:
        for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=top):
            here = "" if dirpath == "." else dirpath[2:] + "/"
            level = here.count("/")
            dirnames.sort()
            if pattern.depth is not None and level + 1 >= pattern.depth:
                descend: list[str] = []
            else:
                descend = list(dirnames)
            for name in sorted([*dirnames, *filenames]):
                scanned += 1
                if scanned > MAX_SCANNED:
                    return Listing(entries, truncated=True)
                relative = here + name
                if not pattern.matches(relative):
                    continue
                try:
                    info = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while listing
                if stat.S_ISLNK(info.st_mode):
                    continue
                if len(entries) >= limit:
                    return Listing(entries, truncated=True)
                entries.append(
                    {
                        "path": f"{prefix}/{relative}" if prefix else relative,
                        "type": paths.kind(info.st_mode),
                        "size": info.st_size,
                        "mtime": datetime.fromtimestamp(info.st_mtime, UTC).isoformat(),
                    }
                )
            dirnames[:] = descend
    return Listing(entries, truncated=False)
