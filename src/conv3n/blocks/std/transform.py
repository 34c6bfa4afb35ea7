"""std/transform: reshape data with a template, JMESPath or JSONPath (RFC 9535)."""

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

if TYPE_CHECKING:
    import jsonpath


class TransformConfig(BaseModel):
    """Configuration of std/transform: `input` plus exactly one of jmespath, jsonpath, template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: JSON = Field(
        None,
        description="The data to transform (default: the single "
        "predecessor's data, or $input for a start node).",
    )
    jmespath: str | None = Field(None, description="A JMESPath expression applied to input.")
    jsonpath: str | None = Field(
        None, description="An RFC 9535 JSONPath query; the list of matched values."
    )
    template: JSON = Field(None, description="Any JSON; its {{ expressions }} are rendered.")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, value: Any) -> Any:
        if isinstance(value, dict):
            given = [k for k in ("jmespath", "jsonpath", "template") if k in value]
            if len(given) != 1:
                raise ValueError("give exactly one of `jmespath`, `jsonpath` or `template`")
        return value

    @model_validator(mode="after")
    def _compiles(self) -> "TransformConfig":
        try:
            if self.jmespath is not None:
                _jmespath(self.jmespath)
            elif self.jsonpath is not None:
                _jsonpath(self.jsonpath)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return self


@lru_cache(maxsize=4096)
def _jmespath(expression: str) -> Any:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(expression)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath: {exc}") from None


_ENV: "jsonpath.JSONPathEnvironment | None" = None


@lru_cache(maxsize=4096)
def _jsonpath(query: str) -> Any:
    global _ENV
    import jsonpath

    if _ENV is None:
        _ENV = jsonpath.JSONPathEnvironment(strict=True)
    try:
        return _ENV.compile(query)
    except jsonpath.JSONPathError as exc:
        raise ValueError(f"invalid JSONPath: {exc}") from None


@block("transform")
async def transform(ctx: Context, config: TransformConfig) -> JSON:
    """Reshape data: render a template, or query the input with JMESPath or JSONPath."""
    if config.template is not None or "template" in config.model_fields_set:
        return config.template
    data = config.input if "input" in config.model_fields_set else ctx.input
    if config.jmespath is not None:
        from jmespath.exceptions import JMESPathError

        try:
            return _jmespath(config.jmespath).search(data)
        except JMESPathError as exc:
            raise BlockError(f"JMESPath {config.jmespath!r} failed: {exc}") from None
    import jsonpath

    query = config.jsonpath or "$"
    try:
        return _jsonpath(query).findall(data)
    except jsonpath.JSONPathError as exc:
        raise BlockError(f"JSONPath {query!r} failed: {exc}") from None
