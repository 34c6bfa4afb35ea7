"""`@block`: how a block declares itself, and `Route`, how it picks an output port."""

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel

from conv3n.errors import BlockRegistryError
from conv3n.model import JSON

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PORT = re.compile(r"^[A-Za-z0-9_-]+$")
ERROR_PORT = "error"
"""The port a node with `on_error: route` activates when it fails."""


@dataclass(frozen=True, slots=True)
class Route:
    """A block's result sent to one named output port (std/condition's `true`/`false`)."""

    port: str
    data: JSON = None


PortsFromConfig = Callable[[Mapping[str, Any]], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """A declared block: what the registry holds and the engine runs.

    Attributes:
        name: short name, unique within its namespace (`http_request`).
        config_model: frozen pydantic model; the single source of schema and validation.
        run: `async def run(ctx, config) -> JSON | Route`.
        ports: output ports, `main` for most blocks.
        description: the function's docstring.
        ports_from_config: for blocks whose ports depend on their config (std/switch).
        raw_fields: config fields the engine does not render: sub-graphs the compiler compiles,
            and fields declared `raw` (a top-level key, or a dotted path where `*` stands for
            every item of a list: `statements.*.query`).
        subgraphs: config keys that hold `{nodes, connections}` run by `ctx.run_subgraph`.
    """

    name: str
    config_model: type[BaseModel]
    run: Callable[[Any, Any], Awaitable[Any]]
    ports: tuple[str, ...] = ("main",)
    description: str = ""
    ports_from_config: PortsFromConfig | None = None
    raw_fields: frozenset[str] = field(default_factory=frozenset)
    subgraphs: frozenset[str] = field(default_factory=frozenset)

    def ports_for(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """The output ports of a node with this (raw) config."""
        if self.ports_from_config is None:
            return self.ports
        try:
            return self.ports_from_config(config)
        except (TypeError, ValueError, KeyError, AttributeError):
            return self.ports

    def json_schema(self) -> dict[str, Any]:
        """The config's JSON Schema (for `conv3n blocks --json`, the API and the editor)."""
        return self.config_model.model_json_schema()


def block(
    name: str,
    *,
    ports: tuple[str, ...] = ("main",),
    ports_from_config: PortsFromConfig | None = None,
    subgraphs: tuple[str, ...] = (),
    raw: tuple[str, ...] = (),
) -> Callable[[Callable[..., Awaitable[Any]]], BlockSpec]:
    """Declare a block from an `async def run(ctx, config: Model)`.

    The config annotation is the single source of the block's JSON Schema and validation; the
    docstring is its description. A bad declaration fails at import time, naming the function.
    `raw` names config fields the engine must not render: a `{{` there reaches the config model
    as written, so its validator can refuse expressions (std/database's SQL text). A template
    that would produce such a field (`statements: "{{ x }}"`) is not rendered either.

    Example:
        >>> class EchoConfig(BaseModel):
        ...     text: str
        >>> @block("echo")
        ... async def echo(ctx, config: EchoConfig):
        ...     "Return the text."
        ...     return config.text
    """

    def declare(function: Callable[..., Awaitable[Any]]) -> BlockSpec:
        where = f"{function.__module__}.{function.__qualname__}"
        if not _NAME.match(name):
            raise BlockRegistryError(f"{where}: block name {name!r} must match [a-z][a-z0-9_]*")
        if not inspect.iscoroutinefunction(function):
            raise BlockRegistryError(f"{where}: a block must be an `async def`")
        try:
            hints = get_type_hints(function)
        except NameError as exc:
            raise BlockRegistryError(f"{where}: cannot resolve annotations ({exc})") from None
        model = hints.get("config")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise BlockRegistryError(
                f"{where}: the `config` parameter must be annotated with a pydantic model"
            )
        if not ports and ports_from_config is None:
            raise BlockRegistryError(f"{where}: a block needs at least one output port")
        for port in ports:
            if not _PORT.match(port):
                raise BlockRegistryError(f"{where}: bad port name {port!r}")
        return BlockSpec(
            name=name,
            config_model=model,
            run=function,
            ports=tuple(ports),
            description=inspect.cleandoc(function.__doc__ or ""),
            ports_from_config=ports_from_config,
            raw_fields=frozenset((*subgraphs, *raw)),
            subgraphs=frozenset(subgraphs),
        )

    return declare
