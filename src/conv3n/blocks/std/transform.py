"""std/transform: reshape data with a template, JMESPath or JSONPath (RFC 9535)."""

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

if TYPE_CHECKING:
    import jsonpath

QUERIES = ("jmespath", "jsonpath", "template")


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
        if not isinstance(value, dict):
            return value
        given = [key for key in QUERIES if key in value]
        if not given:
            raise PydanticCustomError(
                "missing_query", "give one of `jmespath`, `jsonpath` or `template`"
            )
        if len(given) > 1:
            # Reported at every key given, so that the place is named at compile time even when
            # some of them hold expressions (whose errors wait for rendering).
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "extra_query",
                            "give only one of `jmespath`, `jsonpath` or `template` "
                            "(given: {given})",
                            {"given": " and ".join(given)},
                        ),
                        loc=(key,),
                        input=value[key],
                    )
                    for key in given
                ],
            )
        return value

    @field_validator("jmespath")
    @classmethod
    def _jmespath_compiles(cls, expression: str | None) -> str | None:
        if expression is not None:
            _jmespath(expression)
        return expression

    @field_validator("jsonpath")
    @classmethod
    def _jsonpath_compiles(cls, query: str | None) -> str | None:
        if query is not None:
            _jsonpath(query)
        return query


@lru_cache(maxsize=4096)
def _jmespath(expression: str) -> Any:
    """The compiled expression; PydanticCustomError (a config error at `jmespath`) if invalid."""
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        # jmespath.py still accepts JEP-12's deprecated `foo` literals, with a warning the
        # user never sees; accept them quietly as the library does.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            return jmespath.compile(expression)
    except JMESPathError as exc:
        message = " ".join(str(exc).split())
        raise PydanticCustomError(
            "invalid_jmespath", "invalid JMESPath: {error}", {"error": message}
        ) from None


_ENV: "jsonpath.JSONPathEnvironment | None" = None


@lru_cache(maxsize=4096)
def _jsonpath(query: str) -> Any:
    """The compiled query; PydanticCustomError (a config error at `jsonpath`) if invalid."""
    global _ENV
    import jsonpath

    if _ENV is None:
        _ENV = jsonpath.JSONPathEnvironment(strict=True)
    try:
        return _ENV.compile(query)
    except jsonpath.JSONPathError as exc:
        message = " ".join(str(exc).split("\n")[0].split())
        raise PydanticCustomError(
            "invalid_jsonpath", "invalid JSONPath: {error}", {"error": message}
        ) from None


@block("transform")
async def transform(ctx: Context, config: TransformConfig) -> JSON:
    """Reshape data: render a template, or query the input with JMESPath or JSONPath."""
    if "template" in config.model_fields_set:
        return config.template
    data = config.input if "input" in config.model_fields_set else ctx.input
    if config.jmespath is not None:
        from jmespath.exceptions import JMESPathError

        try:
            return _jmespath(config.jmespath).search(data)
        # jmespath.py raises a bare ValueError for some invalid values (a slice step of 0).
        except (JMESPathError, ValueError, RecursionError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise BlockError(
                f"JMESPath {config.jmespath!r} failed: {message}",
                details={"jmespath": config.jmespath},
            ) from None
    import jsonpath

    query = config.jsonpath or "$"
    try:
        return _jsonpath(query).findall(data)
    except (jsonpath.JSONPathError, RecursionError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise BlockError(
            f"JSONPath {query!r} failed: {message}", details={"jsonpath": query}
        ) from None
