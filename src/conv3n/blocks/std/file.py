"""std/file: read, write, append, list, delete, exists and move inside the files root.

Every path is confined to `ctx.files_root` (see `paths.py` for how); file I/O runs in worker
threads (`asyncio.to_thread`) so the event loop never waits on the disk.
"""

import asyncio
import base64
import binascii
import codecs
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from conv3n.blocks.std import listing, paths
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_BYTES = 256 * 1024 * 1024
"""The hard cap of `max_bytes`: a node's data lives in memory and in the execution record."""
MAX_LIST = 10_000

Operation = Literal["read", "write", "append", "list", "delete", "exists", "move"]
_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO someone placed in the root must fail or return, never hang.


def _problem(model: str, field: str, kind: str, message: str, value: object) -> ValidationError:
    """A validation error located at one field (a whole-config error would not name it)."""
    return ValidationError.from_exception_data(
        model,
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=(field,), input=value)],
    )


class FileConfig(BaseModel):
    """Configuration of std/file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operation: Operation = Field(description="read, write, append, list, delete, exists or move.")
    path: str = Field(
        "",
        max_length=paths.MAX_PATH_CHARS,
        description="A path relative to the files root (`reports/today.csv`); for list, "
        "the folder to list (default: the root).",
    )
    to: str | None = Field(
        None,
        max_length=paths.MAX_PATH_CHARS,
        description="move: the destination path, relative to the files root.",
    )
    content: JSON = Field(
        None,
        description="write/append: the text to write (other values are written as JSON), "
        "or with encoding base64 the bytes as a base64 string.",
    )
    encoding: str = Field(
        "utf-8",
        description="Text encoding for read/write/append (utf-8, latin-1, ...), or `base64` "
        "for binary data passed as base64 strings.",
    )
    overwrite: bool = Field(
        True,
        description="write/move: replace an existing file (false: fail if it exists).",
    )
    recursive: bool = Field(False, description="delete: also delete a directory that is not empty.")
    missing_ok: bool = Field(
        False, description="delete: succeed (deleted: false) when the path does not exist."
    )
    pattern: str = Field(
        "*",
        description="list: a glob relative to `path`: `*` and `?` within a name, `[abc]`, "
        "`**` for any number of folders (`**/*.csv`).",
    )
    limit: int = Field(1000, ge=1, le=MAX_LIST, description="list: the most entries returned.")
    max_bytes: int = Field(
        DEFAULT_MAX_BYTES,
        gt=0,
        le=MAX_BYTES,
        description="read: larger files fail the node (without being loaded); "
        "write/append: larger content fails it.",
    )

    @field_validator("path")
    @classmethod
    def _path_is_relative(cls, value: str) -> str:
        return paths.check_relative(value, allow_root=True)

    @field_validator("to")
    @classmethod
    def _to_is_relative(cls, value: str | None) -> str | None:
        return None if value is None else paths.check_relative(value)

    @field_validator("pattern")
    @classmethod
    def _pattern_is_relative(cls, value: str) -> str:
        return listing.check_pattern(value)

    @field_validator("encoding")
    @classmethod
    def _encoding_is_known(cls, value: str) -> str:
        if value.lower() == "base64":
            return "base64"
        try:
            return codecs.lookup(value).name
        except LookupError:
            message = f"unknown encoding {value!r} (use utf-8, latin-1, base64, ...)"
            raise ValueError(message) from None

    @model_validator(mode="after")
    def _fields_fit_the_operation(self) -> "FileConfig":
        name = type(self).__name__
        if not self.path and self.operation != "list":
            raise _problem(name, "path", "path_required", "a path is required", self.path)
        if self.operation == "move" and self.to is None:
            raise _problem(name, "to", "to_required", "move needs a destination `to`", self.to)
        if self.operation in ("write", "append"):
            if self.content is None:
                raise _problem(name, "content", "content_required", "content is required", None)
            if self.encoding == "base64" and not isinstance(self.content, str):
                raise _problem(
                    name, "content", "base64", "base64 content must be a string", self.content
                )
        return self


@block("file")
async def file(ctx: Context, config: FileConfig) -> JSON:
    """Read, write, append, list, delete, check or move files inside the files root."""
    if ctx.files_root is None:
        raise BlockError("file access is off here (no files root is configured)")
    data = _encode(config) if config.operation in ("write", "append") else b""
    operation = _OPERATIONS[config.operation]
    return await asyncio.to_thread(_run, operation, ctx.files_root, config, data)


def _run(operation: "_Operation", root_path: Path, config: FileConfig, data: bytes) -> JSON:
    root = paths.Root(root_path)
    try:
        return operation(root, config, data)
    except OSError as exc:
        raise paths.os_error(exc, config.path or ".") from None


def _encode(config: FileConfig) -> bytes:
    content = config.content
    if config.encoding == "base64":
        try:
            data = base64.b64decode(str(content), validate=True)
        except (binascii.Error, ValueError):
            raise BlockError("content is not valid base64", details={"field": "content"}) from None
    else:
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        try:
            data = text.encode(config.encoding)
        except UnicodeEncodeError as exc:
            raise BlockError(
                f"content cannot be encoded as {config.encoding}: {exc.reason}",
                details={"encoding": config.encoding, "position": exc.start},
            ) from None
    if len(data) > config.max_bytes:
        raise _too_large(config.path, len(data), config.max_bytes, "content")
    return data


def _too_large(path: str, size: int, limit: int, what: str) -> BlockError:
    return BlockError(
        f"{path!r}: the {what} has {size:,} bytes, more than max_bytes ({limit:,})",
        details={"path": path, "size": size, "max_bytes": limit},
    )


def _decode(config: FileConfig, data: bytes) -> str:
    if config.encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    try:
        return data.decode(config.encoding)
    except UnicodeDecodeError as exc:
        raise BlockError(
            f"{config.path!r} is not valid {config.encoding} text (byte {exc.start}); "
            "read it with encoding: base64",
            details={"path": config.path, "encoding": config.encoding, "position": exc.start},
        ) from None


def _regular(fd: int, shown: str) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise BlockError(f"{shown!r} is {what}", details={"path": shown})
    return info


def _read(root: paths.Root, config: FileConfig, _data: bytes) -> JSON:
    place = root.locate(config.path)
    with root.parent(place) as folder:
        fd = os.open(place.name, os.O_RDONLY | _OPEN, dir_fd=folder)
        with open(fd, "rb") as handle:
            info = _regular(fd, place.shown)
            if info.st_size > config.max_bytes:
                raise _too_large(place.shown, info.st_size, config.max_bytes, "file")
            data = handle.read(config.max_bytes + 1)
    if len(data) > config.max_bytes:  # it grew while being read
        raise _too_large(place.shown, len(data), config.max_bytes, "file")
    return {
        "path": place.shown,
        "content": _decode(config, data),
        "encoding": config.encoding,
        "size": len(data),
    }


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write(root: paths.Root, config: FileConfig, data: bytes) -> JSON:
    place = root.locate(config.path)
    with root.parent(place, create=True) as folder:
        existed = _lstat(place.name, folder) is not None
        if not config.overwrite:
            fd = os.open(place.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN, dir_fd=folder)
            with open(fd, "wb", buffering=0):
                _write_all(fd, data)
        else:
            # A temporary file renamed over the target: readers see the old or the new
            # content, never half of it, and a link at the target is replaced, not followed.
            temporary = f".conv3n-{uuid.uuid4().hex}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN, dir_fd=folder)
            try:
                with open(fd, "wb", buffering=0):
                    _write_all(fd, data)
                os.replace(temporary, place.name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                os.unlink(temporary, dir_fd=folder)
                raise
    return {"path": place.shown, "size": len(data), "created": not existed}


def _append(root: paths.Root, config: FileConfig, data: bytes) -> JSON:
    place = root.locate(config.path)
    with root.parent(place, create=True) as folder:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _OPEN
        fd = os.open(place.name, flags, 0o666, dir_fd=folder)
        with open(fd, "wb", buffering=0):
            _regular(fd, place.shown)
            # O_APPEND places each write at the end; the lock keeps one append whole even
            # when it takes several writes, also against other processes that lock.
            fcntl.flock(fd, fcntl.LOCK_EX)
            _write_all(fd, data)
            size = os.fstat(fd).st_size
    return {"path": place.shown, "appended": len(data), "size": size}


def _list(root: paths.Root, config: FileConfig, _data: bytes) -> JSON:
    place = root.locate(config.path)
    found = listing.walk(root, place, listing.Pattern.of(config.pattern), config.limit)
    return {"files": found.entries, "count": len(found.entries), "truncated": found.truncated}


def _lstat(name: str, folder: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _delete(root: paths.Root, config: FileConfig, _data: bytes) -> JSON:
    place = root.locate(config.path, follow_last=False)
    try:
        with root.parent(place) as folder:
            info = _lstat(place.name, folder)
            if info is None:
                raise FileNotFoundError(2, "No such file or directory")
            if not stat.S_ISDIR(info.st_mode):
                os.unlink(place.name, dir_fd=folder)
            elif config.recursive:
                # fd-based and link-safe: rmtree never follows a link out of the tree
                shutil.rmtree(place.name, dir_fd=folder)
            else:
                os.rmdir(place.name, dir_fd=folder)
    except FileNotFoundError:
        if not config.missing_ok:
            raise
        return {"path": place.shown, "deleted": False}
    return {"path": place.shown, "deleted": True}


def _exists(root: paths.Root, config: FileConfig, _data: bytes) -> JSON:
    place = root.locate(config.path)
    try:
        with root.parent(place) as folder:
            info = _lstat(place.name, folder)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is None:
        return {"path": place.shown, "exists": False, "type": None, "size": None, "mtime": None}
    return {
        "path": place.shown,
        "exists": True,
        "type": paths.kind(info.st_mode),
        "size": info.st_size,
        "mtime": datetime.fromtimestamp(info.st_mtime, UTC).isoformat(),
    }


def _move(root: paths.Root, config: FileConfig, _data: bytes) -> JSON:
    source = root.locate(config.path, follow_last=False)
    target = root.locate(config.to or "", follow_last=False)  # `to` is required for move
    with root.parent(source) as src, root.parent(target, create=True) as dst:
        if _lstat(source.name, src) is None:
            raise FileNotFoundError(2, "No such file or directory")
        if not config.overwrite and _lstat(target.name, dst) is not None:
            # checked, then renamed: a file created in between is replaced (POSIX rename has
            # no "no replace" flag that Python exposes)
            raise paths.os_error(FileExistsError(17, "File exists"), target.shown)
        os.rename(source.name, target.name, src_dir_fd=src, dst_dir_fd=dst)
    return {"path": target.shown, "from": source.shown}


_Operation = Callable[[paths.Root, FileConfig, bytes], JSON]
_OPERATIONS = {
    "read": _read,
    "write": _write,
    "append": _append,
    "list": _list,
    "delete": _delete,
    "exists": _exists,
    "move": _move,
}
