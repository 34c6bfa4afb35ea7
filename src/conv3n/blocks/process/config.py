"""A pydantic config model made from a manifest's JSON Schema.

`BlockSpec.config_model` must be a pydantic model: this one is a frozen `RootModel` over the
config object whose validator runs the schema (jsonschema, the reference implementation) and
reports each violation at its own place, so the compiler says `nodes[0].config.x`. Its
`model_json_schema()` is the manifest's schema, unchanged, for `conv3n blocks --json`.
"""

import copy
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote

from pydantic import ConfigDict, RootModel, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    import jsonschema


class ProcessConfig(RootModel[dict[str, Any]]):
    """A process block's config: any object its manifest's schema accepts."""

    model_config = ConfigDict(frozen=True)
    __manifest_schema__: ClassVar[dict[str, Any]] = {}
    __validator__: ClassVar["jsonschema.protocols.Validator | None"] = None

    @model_validator(mode="before")
    @classmethod
    def _matches_the_manifest_schema(cls, value: Any) -> Any:
        validator = cls.__validator__
        if validator is None:
            return value
        from referencing.exceptions import Unresolvable

        try:
            details = list(_problems(validator, value))
        except RecursionError:
            details = [_detail("json_schema", "the config nests too deeply", (), None)]
        except Unresolvable as exc:
            details = [
                _detail("json_schema", f"the block's schema cannot be applied: {exc}", (), None)
            ]
        if details:
            raise ValidationError.from_exception_data(cls.__name__, details)
        return value

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The manifest's schema itself (pydantic's generator would rewrite its `$ref`s)."""
        return copy.deepcopy(cls.__manifest_schema__)


def _validator_class(schema: dict[str, Any]) -> "type[jsonschema.protocols.Validator]":
    import jsonschema

    cls: type[jsonschema.protocols.Validator] = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    return cls


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError (for pydantic) unless `schema` is a JSON Schema of an object."""
    import jsonschema

    try:
        _validator_class(schema).check_schema(schema)
        refs = list(_refs(schema))
    except jsonschema.SchemaError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        where = where.lstrip(".")
        at = f" at {where}" if where else ""
        raise ValueError(f"not a valid JSON Schema{at}: {exc.message}") from None
    except RecursionError:
        raise ValueError("the schema nests too deeply") from None
    for ref in refs:
        if not ref.startswith("#"):
            raise ValueError(f"$ref {ref!r}: only references within the schema (#/$defs/...) work")
        if ref.startswith("#/") or ref == "#":
            _pointer(schema, ref)
    kind = schema.get("type", "object")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        raise ValueError(
            f"a node's config is an object, so the schema's type must be 'object' (got {kind!r})"
        )


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "$ref" and isinstance(child, str):
                yield child
            else:
                yield from _refs(child)
    elif isinstance(value, list):
        for child in value:
            yield from _refs(child)


def _pointer(schema: dict[str, Any], ref: str) -> None:
    """Raise ValueError unless the local reference `#/a/b` names a part of the schema."""
    node: Any = schema
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ValueError(f"$ref {ref!r} names nothing in the schema")


def config_model(schema: dict[str, Any], *, block_type: str) -> type[ProcessConfig]:
    """A pydantic model validating a config against `schema` (checked by `check_schema`)."""
    cls = _validator_class(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    name = "Config_" + re.sub(r"\W", "_", block_type)
    return type(
        name,
        (ProcessConfig,),
        {
            "__manifest_schema__": copy.deepcopy(schema),
            "__validator__": validator,
            "__doc__": f"The config of {block_type}.",
            "__module__": __name__,
        },
    )


def _problems(
    validator: "jsonschema.protocols.Validator", value: Any
) -> Iterator[InitErrorDetails]:
    """One pydantic error per violation, at the violating field (`x`, `items[2].name`).

    `required` and `additionalProperties: false` point at the missing or unknown key itself,
    as pydantic's own `missing` and `extra_forbidden` do.
    """
    seen: set[tuple[Any, ...]] = set()
    for error in sorted(
        validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path]
    ):
        loc = tuple(error.absolute_path)
        instance: Any = error.instance
        expected: Any = error.validator_value
        if error.validator == "required" and isinstance(instance, dict):
            for key in expected:
                if key not in instance and (*loc, key) not in seen:
                    seen.add((*loc, key))
                    yield _detail("missing", "required field is missing", (*loc, key), instance)
            continue
        if error.validator == "additionalProperties" and expected is False:
            extras = list(_extra_keys(error.schema, instance))
            for key in extras:
                if (*loc, key) not in seen:
                    seen.add((*loc, key))
                    yield _detail("extra_forbidden", "unknown field", (*loc, key), instance[key])
            if extras:
                continue
        yield _detail("json_schema", error.message, loc, instance)


def _extra_keys(schema: Any, instance: Any) -> Iterator[str]:
    if not isinstance(schema, dict) or not isinstance(instance, dict):
        return
    properties = schema.get("properties") or {}
    patterns = list((schema.get("patternProperties") or {}).keys())
    for key in instance:
        if key in properties:
            continue
        if any(re.search(pattern, key) for pattern in patterns):
            continue
        yield key


def _detail(kind: str, message: str, loc: tuple[Any, ...], value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(kind, message),
        loc=loc,
        input=value,
    )
