"""The process block manifest (`block.yaml`, `block.yml` or `block.json`): what a block is and how
to start it. Read and validated here; a bad manifest is a `BlockRegistryError` naming the file
and the field (`blocks/acme/block.yaml: config_schema: ...`).
"""

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conv3n.blocks.process import config
from conv3n.errors import BlockRegistryError

MANIFEST_NAMES = ("block.yaml", "block.yml", "block.json")
"""The file names a block folder's manifest may have (exactly one per folder)."""
MAX_MANIFEST_BYTES = 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
BLOCK_TYPE_PATTERN = r"^[a-z][a-z0-9_]*/[a-z][a-z0-9_]*$"
_PORT = re.compile(r"^[A-Za-z0-9_-]+$")
_NO_CONFIG: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}


class Manifest(BaseModel):
    """A process block's manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(1, description="Manifest format version.")
    type: str = Field(
        pattern=BLOCK_TYPE_PATTERN,
        max_length=128,
        description="The block type, `namespace/name` (`acme/crm_lookup`).",
    )
    description: str = Field("", max_length=10_000, description="What the block does.")
    config_schema: dict[str, Any] = Field(
        default_factory=lambda: dict(_NO_CONFIG),
        description="JSON Schema of the node's config (an object); checked at validate time "
        "and before every attempt. Default: no config.",
    )
    ports: tuple[str, ...] = Field(
        ("main",), min_length=1, max_length=64, description="Output ports; an answer may pick one."
    )
    command: tuple[str, ...] = Field(
        min_length=1,
        max_length=1000,
        description="argv of the process. A first item holding a `/` is relative to the "
        "manifest's folder (the process's working directory); `${BLOCK_DIR}` in any item is "
        "replaced by that folder's absolute path.",
    )
    mode: Literal["once", "worker"] = Field(
        "once",
        description="once: one process per run; worker: long-lived processes, each answering "
        "one request at a time.",
    )
    pool_size: int = Field(
        4, ge=1, le=256, description="At most this many processes of this block run at once."
    )
    timeout_ms: int = Field(
        30_000,
        gt=0,
        le=86_400_000,
        description="Limit for one answer (including the start of the process); the process "
        "is killed past it.",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Extra environment variables (`${BLOCK_DIR}` is replaced). The process "
        "otherwise sees only PATH, HOME, LANG, LC_*, TZ and TMPDIR of conv3n's environment.",
    )
    max_line_bytes: int = Field(
        DEFAULT_MAX_LINE_BYTES,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Longest line the process may write to stdout (an answer larger than this "
        "fails the node).",
    )

    @field_validator("ports")
    @classmethod
    def _ports_are_names(cls, ports: tuple[str, ...]) -> tuple[str, ...]:
        for port in ports:
            if not _PORT.match(port):
                raise ValueError(f"bad port name {port!r} (letters, digits, _ and -)")
        if len(set(ports)) != len(ports):
            raise ValueError("ports are listed twice")
        return ports

    @field_validator("command")
    @classmethod
    def _command_has_a_program(cls, command: tuple[str, ...]) -> tuple[str, ...]:
        if not command[0].strip():
            raise ValueError("the program (first item) is empty")
        return command

    @field_validator("config_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any]) -> dict[str, Any]:
        config.check_schema(schema)
        return schema

    @property
    def namespace(self) -> str:
        """`acme` of `acme/crm_lookup`."""
        return self.type.partition("/")[0]

    @property
    def name(self) -> str:
        """`crm_lookup` of `acme/crm_lookup`."""
        return self.type.partition("/")[2]


def find(folder: Path) -> Path | None:
    """The manifest file of a block folder, None if it has none.

    Raises:
        BlockRegistryError: the folder holds more than one manifest.
    """
    found = [folder / name for name in MANIFEST_NAMES if (folder / name).is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise BlockRegistryError(f"{folder}: more than one manifest ({names})")
    return found[0] if found else None


def read(path: Path) -> Manifest:
    """Read and validate one manifest file.

    Raises:
        BlockRegistryError: unreadable, not JSON/YAML, or not a valid manifest; the message
            names the file and the field.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BlockRegistryError(f"{path}: cannot read the manifest: {exc.strerror}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BlockRegistryError(
            f"{path}: the manifest is larger than {MAX_MANIFEST_BYTES:,} bytes"
        )
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except UnicodeDecodeError:
        raise BlockRegistryError(f"{path}: the manifest is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise BlockRegistryError(f"{path}: not valid JSON ({where}): {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise BlockRegistryError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise BlockRegistryError(f"{path}: the manifest nests too deeply") from None
    if not isinstance(data, dict):
        raise BlockRegistryError(f"{path}: a manifest is an object with `type` and `command`")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise BlockRegistryError(f"{path}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    """`config_schema: ...; command: required field is missing`."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        parts.append(f"{loc.lstrip('.') or '(manifest)'}: {message}")
    return "; ".join(parts)
