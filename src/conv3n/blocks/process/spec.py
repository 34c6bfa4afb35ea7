"""From manifests to `BlockSpec`s: one block per manifest, and the folders that hold them.

A blocks folder holds one subfolder per block, each with its manifest; a subfolder without one
is searched one level deeper (`blocks/acme/crm_lookup/block.yaml`). `load_folder` reports bad
manifests and keeps the good ones (the runtime's blocks folder); `from_manifests` refuses a
package with any bad manifest (the target of a `conv3n.blocks` entry point).
"""

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conv3n.blocks.process import config, manifest, pool, protocol
from conv3n.errors import BlockError, BlockRegistryError
from conv3n.model import JSON
from conv3n.sdk import BlockSpec, Context, Route


def block_spec(found: manifest.Manifest, path: Path) -> BlockSpec:
    """The block a manifest file declares (`path` is the manifest; its folder the process's)."""
    folder = path.parent.resolve()
    key = f"conv3n.blocks.process:{found.type}:{path.resolve()}"

    def make_pool() -> pool.ProcessPool:
        return pool.ProcessPool(found, folder)

    async def run(ctx: Context, cfg: config.ProcessConfig) -> JSON | Route:
        request = protocol.Request(
            id=uuid.uuid4().hex,
            config=cfg.root,
            input=ctx.input,
            node_id=ctx.node_id,
            execution_id=ctx.execution_id,
            idempotency_key=ctx.idempotency_key,
            attempt=ctx.attempt,
        )
        answer = await ctx.shared(key, make_pool).call(request, ctx.log)
        if isinstance(answer, protocol.Failed):
            error = answer.error
            raise BlockError(error.message, retryable=error.retryable, details=error.details)
        port = answer.port or found.ports[0]
        if port not in found.ports:
            raise BlockError(
                f"{found.type}: the process answered on port {port!r}, which the block "
                f"does not have (ports: {', '.join(found.ports)})"
            )
        return answer.data if port == "main" else Route(port, answer.data)

    return BlockSpec(
        name=found.name,
        config_model=config.config_model(found.config_schema, block_type=found.type),
        run=run,
        ports=found.ports,
        description=found.description.strip(),
    )


@dataclass(frozen=True, slots=True)
class FolderBlocks:
    """What a blocks folder holds.

    Attributes:
        namespaces: the good blocks by namespace.
        problems: one message per bad manifest (`path: field: message`), skipped.
        paths: the manifest file of each block type.
    """

    namespaces: dict[str, tuple[BlockSpec, ...]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    paths: dict[str, Path] = field(default_factory=dict)


def manifest_files(root: Path, problems: list[str]) -> list[Path]:
    """Every manifest under a blocks folder (or the file itself), in name order; a folder with
    two manifests, or one that cannot be read, is a problem."""
    if root.is_file():
        return [root]
    found: list[Path] = []

    def visit(folder: Path, depth: int) -> None:
        try:
            path = manifest.find(folder)
        except BlockRegistryError as exc:
            problems.append(exc.message)
            return
        if path is not None:
            found.append(path)
            return
        if depth == 0:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir())
        except OSError as exc:
            problems.append(f"{folder}: cannot read the folder: {exc.strerror or exc}")
            return
        for child in children:
            if not child.name.startswith("."):
                visit(child, depth - 1)

    visit(root, 2)
    return found


def load_folder(root: Path) -> FolderBlocks:
    """The blocks of a folder; a bad manifest is reported and skipped, never fatal."""
    specs: dict[str, list[BlockSpec]] = {}
    paths: dict[str, Path] = {}
    problems: list[str] = []
    for path in manifest_files(root, problems):
        try:
            found = manifest.read(path)
            if found.type in paths:
                raise BlockRegistryError(
                    f"{path}: block {found.type!r} is also declared by {paths[found.type]}"
                )
            spec = block_spec(found, path)
        except BlockRegistryError as exc:
            problems.append(exc.message)
            continue
        paths[found.type] = path
        specs.setdefault(found.namespace, []).append(spec)
    return FolderBlocks(
        namespaces={ns: tuple(found) for ns, found in sorted(specs.items())},
        problems=tuple(problems),
        paths=paths,
    )


def from_manifests(path: Path | str, *, namespace: str | None = None) -> tuple[BlockSpec, ...]:
    """The blocks of a folder of manifests (or one manifest file), for a `conv3n.blocks` entry
    point: `BLOCKS = from_manifests(Path(__file__).parent / "blocks", namespace="acme")`.

    Raises:
        BlockRegistryError: a manifest is bad, the folder holds none, or the manifests' types
            are not all in `namespace` (the entry point's name); every problem is listed.
    """
    root = Path(path)
    if not root.exists():
        raise BlockRegistryError(f"{root}: no such folder of block manifests")
    found = load_folder(root)
    problems: list[Any] = list(found.problems)
    if not found.paths and not problems:
        problems.append(f"{root}: holds no block manifest ({', '.join(manifest.MANIFEST_NAMES)})")
    namespaces = sorted(found.namespaces)
    if namespace is not None:
        problems += [
            f"{found.paths[t]}: type {t!r} is not in namespace {namespace!r}"
            for t in sorted(found.paths)
            if t.partition("/")[0] != namespace
        ]
    elif len(namespaces) > 1:
        problems.append(
            f"{root}: the manifests' types span several namespaces ({', '.join(namespaces)})"
        )
    if problems:
        raise BlockRegistryError("; ".join(problems), details={"problems": problems})
    return tuple(spec for ns in namespaces for spec in found.namespaces[ns])
