"""BlockRegistry: namespaces from entry points, loaded lazily; clashes fail loudly."""

import sys
import threading
from importlib.metadata import EntryPoint

import pytest
from pydantic import BaseModel

from conv3n.errors import BlockRegistryError, BlockTypeNotFound
from conv3n.sdk import BlockRegistry, block


class Empty(BaseModel):
    pass


@block("one")
async def one(ctx, config: Empty):
    return 1


@block("two")
async def two(ctx, config: Empty):
    return 2


def test_of_registers_under_the_test_namespace():
    registry = BlockRegistry.of(one, two)
    assert registry.types() == ["test/one", "test/two"]
    assert registry.get("test/one") is one
    assert "test/two" in registry
    assert "test/three" not in registry


def test_unknown_type_raises_not_found_with_the_type():
    with pytest.raises(BlockTypeNotFound) as caught:
        BlockRegistry.of(one).get("test/missing")
    assert caught.value.details == {"type": "test/missing"}


def test_namespace_claimed_twice_names_both_origins():
    registry = BlockRegistry.of(one)
    with pytest.raises(BlockRegistryError, match=r"claimed by both \(given\) and acme"):
        registry.add("test", [two], origin="acme")


def test_duplicate_block_in_one_namespace_is_refused():
    with pytest.raises(BlockRegistryError, match="declared twice"):
        BlockRegistry.of(one, one)


def test_non_block_objects_are_refused():
    registry = BlockRegistry()
    with pytest.raises(BlockRegistryError, match="is not a block"):
        registry.add("acme", [object()], origin="acme-blocks")  # type: ignore[list-item]


def test_discover_finds_std_without_importing_it_until_used():
    sys.modules.pop("conv3n.blocks.std", None)
    registry = BlockRegistry.discover()
    assert "conv3n.blocks.std" not in sys.modules
    assert registry.get("std/noop").name == "noop"
    assert "conv3n.blocks.std" in sys.modules


def test_every_std_block_is_listed():
    types = BlockRegistry.discover().types()
    for name in ("condition", "database", "delay", "fail", "file", "http_request", "loop",
                 "merge", "noop", "respond", "set", "subworkflow", "switch", "transform",
                 "wait"):  # fmt: skip
        assert f"std/{name}" in types
    assert "custom/code" in types


def test_a_namespace_claimed_by_two_entry_points_fails_loudly():
    registry = BlockRegistry()
    points = [
        EntryPoint(name="acme", value="conv3n.blocks.std:BLOCKS", group="conv3n.blocks"),
        EntryPoint(name="acme", value="other.module:BLOCKS", group="conv3n.blocks"),
    ]
    registry._pending["acme"] = points
    with pytest.raises(BlockRegistryError, match="'acme' is claimed by"):
        registry.get("acme/noop")


def test_an_entry_point_that_cannot_import_names_the_package():
    registry = BlockRegistry()
    registry._pending["ghost"] = [
        EntryPoint(name="ghost", value="conv3n_no_such_module:BLOCKS", group="conv3n.blocks")
    ]
    with pytest.raises(BlockRegistryError, match=r"'ghost'.*cannot be imported"):
        registry.get("ghost/x")


class SlowPoint:
    """An entry point whose import waits until released (a namespace being imported)."""

    name = value = "slow"
    dist = None

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def load(self) -> list[object]:
        self.entered.set()
        assert self.release.wait(10)
        return [one]


def test_a_namespace_another_thread_is_importing_is_waited_for_not_missing():
    registry = BlockRegistry()
    point = SlowPoint()
    registry._pending["slow"] = [point]  # type: ignore[list-item]
    found: list[object] = []
    first = threading.Thread(target=lambda: found.append(registry.get("slow/one")))
    first.start()
    assert point.entered.wait(10)
    second = threading.Thread(target=lambda: found.append(registry.get("slow/one")))
    second.start()
    second.join(0.05)  # time to reach the registry: it must wait there, not fail at once
    point.release.set()
    first.join(10)
    second.join(10)
    assert found == [one, one]
