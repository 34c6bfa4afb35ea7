"""Flow blocks: std/noop, std/fail, std/set, std/condition, std/switch, std/merge."""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, Route, block


class NoopConfig(BaseModel):
    """std/noop takes no configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@block("noop")
async def noop(ctx: Context, config: NoopConfig) -> JSON:
    """Pass the input through unchanged (a junction, a placeholder, a start node)."""
    return ctx.input


class FailConfig(BaseModel):
    """Configuration of std/fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: str = Field("failed by std/fail", description="The error message; may hold {{ }}.")
    details: dict[str, JSON] = Field(default_factory=dict, description="Facts for the record.")


@block("fail", ports=("main",))
async def fail(ctx: Context, config: FailConfig) -> JSON:
    """Fail the node with a message (use it after a condition to stop on bad data)."""
    raise BlockError(config.message, details=config.details)


class SetConfig(BaseModel):
    """Configuration of std/set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    values: dict[str, JSON] = Field(description="Names and values stored in $vars.")


@block("set")
async def set_vars(ctx: Context, config: SetConfig) -> JSON:
    """Store values in `$vars` for every later node; returns the values."""
    ctx.vars.update(config.values)
    return dict(config.values)


class ConditionConfig(BaseModel):
    """Configuration of std/condition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expression: JSON = Field(
        description="Usually `{{ ... }}`; its truth (null, false, 0, '' and [] are false) picks "
        "the port."
    )


@block("condition", ports=("true", "false"))
async def condition(ctx: Context, config: ConditionConfig) -> Route:
    """Send the flow to `true` or `false` by an expression."""
    result = bool(config.expression)
    return Route("true" if result else "false", {"result": result})


class SwitchCase(BaseModel):
    """One case of std/switch: `equals` compares with `value`; `expression` is tested alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: str = Field(pattern=r"^[A-Za-z0-9_-]+$", description="Output port of this case.")
    equals: JSON = Field(None, description="Taken when `value` equals this.")
    expression: JSON = Field(None, description="Taken when this is true (usually {{ ... }}).")

    @model_validator(mode="before")
    @classmethod
    def _one_test(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and ("equals" in value) == ("expression" in value):
            raise ValueError("a case needs exactly one of `equals` or `expression`")
        return value

    @property
    def by_expression(self) -> bool:
        """Whether the case is tested by `expression`."""
        return "expression" in self.model_fields_set


class SwitchConfig(BaseModel):
    """Configuration of std/switch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: JSON = Field(None, description="What `equals` cases compare against.")
    cases: list[SwitchCase] = Field(description="Tested in order; the first match wins.")
    default: str = Field(
        "default", pattern=r"^[A-Za-z0-9_-]+$", description="Port taken when no case matches."
    )


def _switch_ports(config: Mapping[str, Any]) -> tuple[str, ...]:
    ports = [str(case["port"]) for case in config.get("cases") or () if isinstance(case, dict)]
    default = config.get("default", "default")
    return tuple(dict.fromkeys([*ports, default if isinstance(default, str) else "default"]))


@block("switch", ports=("default",), ports_from_config=_switch_ports)
async def switch(ctx: Context, config: SwitchConfig) -> Route:
    """Send the flow to the port of the first matching case, else to `default`."""
    for case in config.cases:
        matched = bool(case.expression) if case.by_expression else _same(case.equals, config.value)
        if matched:
            return Route(case.port, {"port": case.port})
    return Route(config.default, {"port": config.default})


def _same(left: JSON, right: JSON) -> bool:
    """JSON equality: `true` is not `1` (as Python has it), `1` is `1.0`, order counts in lists."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(v, right[k]) for k, v in left.items())
    return type(left) is type(right) and bool(left == right)


class MergeConfig(BaseModel):
    """Configuration of std/merge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["all", "first"] = Field(
        "all", description="all: {predecessor id: data}; first: the first finished data."
    )


@block("merge")
async def merge(ctx: Context, config: MergeConfig) -> JSON:
    """Join branches: wait for every predecessor, then combine what the activated ones gave."""
    inputs = ctx.inputs
    if config.mode == "first":
        return next(iter(inputs.values()), None)
    return dict(inputs)
