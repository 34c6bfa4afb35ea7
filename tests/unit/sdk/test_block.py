"""@block rejects bad declarations at import time, naming the function."""

import pytest
from pydantic import BaseModel

from conv3n.errors import BlockRegistryError
from conv3n.sdk import BlockSpec, Route, block


class EchoConfig(BaseModel):
    text: str = "hi"


def test_block_builds_a_spec_with_schema_and_description():
    @block("echo", ports=("main", "other"))
    async def echo(ctx, config: EchoConfig):
        """Return the text.

        More words.
        """
        return config.text

    assert isinstance(echo, BlockSpec)
    assert echo.name == "echo"
    assert echo.ports == ("main", "other")
    assert echo.description.startswith("Return the text.")
    assert echo.json_schema()["properties"]["text"]["default"] == "hi"


def test_sync_function_is_refused():
    with pytest.raises(BlockRegistryError, match=r"sync_block.*async def"):

        @block("sync")
        def sync_block(ctx, config: EchoConfig):
            return None


def test_missing_config_annotation_is_refused():
    with pytest.raises(BlockRegistryError, match="annotated with a pydantic model"):

        @block("plain")
        async def plain(ctx, config):
            return None


def test_config_annotation_must_be_a_model():
    with pytest.raises(BlockRegistryError, match="pydantic model"):

        @block("dicty")
        async def dicty(ctx, config: dict[str, int]):
            return None


@pytest.mark.parametrize("name", ["Echo", "1echo", "echo-x", "", "ns/echo"])
def test_bad_block_names_are_refused(name):
    with pytest.raises(BlockRegistryError, match="must match"):

        @block(name)
        async def named(ctx, config: EchoConfig):
            return None


def test_a_block_needs_a_port():
    with pytest.raises(BlockRegistryError, match="at least one output port"):

        @block("portless", ports=())
        async def portless(ctx, config: EchoConfig):
            return None


def test_bad_port_names_are_refused():
    with pytest.raises(BlockRegistryError, match="bad port name"):

        @block("weird", ports=("ok", "not ok"))
        async def weird(ctx, config: EchoConfig):
            return None


def test_ports_from_config_fall_back_to_static_ports_on_bad_config():
    def ports(config):
        return tuple(config["cases"])

    @block("dyn", ports=("default",), ports_from_config=ports)
    async def dyn(ctx, config: EchoConfig):
        return Route("default")

    assert dyn.ports_for({"cases": ["a", "b"]}) == ("a", "b")
    assert dyn.ports_for({}) == ("default",)
