"""`BlockRegistry`: block types by `namespace/name`, fed by the `conv3n.blocks` entry points.

Namespaces load lazily: running a workflow imports only the namespaces it uses. There is no
global registry: build one with `BlockRegistry.discover()` or, in tests, `BlockRegistry.of(...)`.
"""

import threading
from collections.abc import Iterable, Iterator
from importlib.metadata import EntryPoint, entry_points

from conv3n.errors import BlockRegistryError, BlockTypeNotFound
from conv3n.sdk.block import BlockSpec

ENTRY_POINT_GROUP = "conv3n.blocks"


class BlockRegistry:
    """Block types by their full type name (`std/http_request`)."""

    def __init__(self) -> None:
        self._blocks: dict[str, BlockSpec] = {}
        self._origin: dict[str, str] = {}
        self._pending: dict[str, list[EntryPoint]] = {}
        # workflow files compile in threads (runtime.files): a namespace is imported by one
        # of them while the others wait for it, instead of finding it neither pending nor added
        self._loading = threading.Lock()

    @classmethod
    def of(cls, *specs: BlockSpec, namespace: str = "test") -> "BlockRegistry":
        """A registry holding exactly these blocks under one namespace (for tests)."""
        registry = cls()
        registry.add(namespace, specs, origin="(given)")
        return registry

    @classmethod
    def discover(cls) -> "BlockRegistry":
        """A registry of every installed block package; each namespace is imported on first use."""
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            registry._pending.setdefault(ep.name, []).append(ep)
        return registry

    def add(self, namespace: str, specs: Iterable[BlockSpec], *, origin: str) -> None:
        """Register blocks under a namespace; a clash names both origins."""
        if namespace in self._origin:
            raise BlockRegistryError(
                f"block namespace {namespace!r} is claimed by both {self._origin[namespace]} "
                f"and {origin}"
            )
        if namespace in self._pending:
            owners = " and ".join(sorted(_dist_name(ep) for ep in self._pending[namespace]))
            raise BlockRegistryError(
                f"block namespace {namespace!r} is claimed by both {owners} and {origin}"
            )
        self._origin[namespace] = origin
        for spec in specs:
            if not isinstance(spec, BlockSpec):
                raise BlockRegistryError(f"{origin}: {spec!r} is not a block (use @block)")
            full = f"{namespace}/{spec.name}"
            if full in self._blocks:
                raise BlockRegistryError(f"{origin}: block {full!r} is declared twice")
            self._blocks[full] = spec

    def _load(self, namespace: str) -> None:
        with self._loading:
            points = self._pending.pop(namespace, None)
            if not points:
                return
            if len(points) > 1:
                owners = " and ".join(sorted(_dist_name(ep) for ep in points))
                raise BlockRegistryError(f"block namespace {namespace!r} is claimed by {owners}")
            ep = points[0]
            try:
                specs = ep.load()
            except ImportError as exc:
                raise BlockRegistryError(
                    f"block package {namespace!r} ({ep.value}) cannot be imported: {exc}"
                ) from exc
            self.add(namespace, specs, origin=_dist_name(ep))

    def get(self, block_type: str) -> BlockSpec:
        """The block of this type.

        Raises:
            BlockTypeNotFound: no installed package declares it.
        """
        spec = self._blocks.get(block_type)
        if spec is not None:
            return spec
        self._load(block_type.partition("/")[0])
        spec = self._blocks.get(block_type)
        if spec is None:
            raise BlockTypeNotFound(
                f"unknown block type {block_type!r}", details={"type": block_type}
            )
        return spec

    def __contains__(self, block_type: str) -> bool:
        try:
            self.get(block_type)
        except BlockTypeNotFound:
            return False
        return True

    def types(self) -> list[str]:
        """Every block type, loading every namespace."""
        for namespace in list(self._pending):
            self._load(namespace)
        return sorted(self._blocks)

    def __iter__(self) -> Iterator[tuple[str, BlockSpec]]:
        for name in self.types():
            yield name, self._blocks[name]


def _dist_name(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else ep.value
