"""Trigger definitions (SPEC §5): one pydantic model per trigger type, checked when a workflow
is saved or validated, so a bad trigger is a 422 naming its place (`triggers[1].expression`).

Queue definitions are loose here (`extra="allow"`): each broker's own fields are checked by
`conv3n.triggers.queue` when the trigger is built.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conv3n.compiler.document import pydantic_problems
from conv3n.errors import InvalidInput, WorkflowInvalid
from conv3n.model import JSON, Problem
from conv3n.triggers.interval import MAX_EVERY_MS, MIN_EVERY_MS
from conv3n.triggers.schedule import DEFAULT_MAX_CATCH_UP, CatchUp

KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
FileEvent = Literal["created", "modified", "deleted"]
ALL_FILE_EVENTS: list[FileEvent] = ["created", "modified", "deleted"]
WebhookMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
Broker = Literal["redis", "rabbitmq", "mqtt", "nats", "postgres"]
T = TypeVar("T")


class TriggerBase(BaseModel):
    """What every trigger definition may carry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Annotated[str, Field(pattern=KEY_PATTERN, max_length=100)] | None = Field(
        None,
        description="A stable name for this trigger: its state (last and next fire) is kept "
        "under it. Default: its position in `triggers`, e.g. `0`.",
    )
    description: str | None = Field(None, max_length=2000, description="Free text for humans.")


class ManualTrigger(TriggerBase):
    """Started by hand: CLI, API or editor."""

    type: Literal["manual"]


class WebhookTrigger(TriggerBase):
    """An HTTP request to `/webhook/{path}`."""

    type: Literal["webhook"]
    path: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s?#]+$")] = Field(
        description="The URL path after /webhook/ (no spaces, `?` or `#`)."
    )
    method: WebhookMethod = Field("POST", description="The HTTP method it answers.")
    response: Literal["sync", "async"] = Field(
        "sync", description="sync: answer with the execution's result; async: 202 at once."
    )
    secret: Annotated[str, Field(min_length=1, max_length=1000)] | None = Field(
        None,
        description="A Standard Webhooks secret (`whsec_...`) or the name of a stored secret: "
        "requests must then be signed.",
    )
    max_body_bytes: int | None = Field(
        None, gt=0, le=1024**3, description="Largest accepted body (default 1 MiB)."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ScheduledBase(TriggerBase):
    """What cron and interval triggers share."""

    catch_up: CatchUp = Field(
        "last",
        description="Due times missed while no server ran: none (skip them), last (run the "
        "most recent once), all (run each, at most max_catch_up).",
    )
    max_catch_up: int = Field(
        DEFAULT_MAX_CATCH_UP,
        ge=1,
        le=10_000,
        description="With catch_up all: most missed due times run after a downtime.",
    )


class CronTrigger(ScheduledBase):
    """At the due times of a cron expression."""

    type: Literal["cron"]
    expression: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        description="5 fields (minute hour day month weekday), 6 with seconds first, or an "
        "alias such as @daily."
    )
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        "UTC", description="IANA time zone the expression is read in, e.g. Europe/Berlin."
    )

    @field_validator("expression")
    @classmethod
    def _valid_expression(cls, value: str) -> str:
        from conv3n.triggers.cron import CronSchedule

        try:
            CronSchedule(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        from conv3n.triggers.cron import zone

        try:
            zone(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return value


class IntervalTrigger(ScheduledBase):
    """Every `every_ms` milliseconds."""

    type: Literal["interval"]
    every_ms: int = Field(
        ge=MIN_EVERY_MS,
        le=MAX_EVERY_MS,
        description=f"The period in milliseconds (at least {MIN_EVERY_MS}); due times are "
        "multiples of it since the Unix epoch.",
    )


class QueueTrigger(TriggerBase):
    """A message from a broker; the broker's own fields are checked when it starts."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["queue"]
    broker: Broker = Field(description="redis, rabbitmq, mqtt, nats or postgres.")
    url: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        None, description="The broker's URL (or give `credential`)."
    )
    credential: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="The name of a stored secret holding the broker's URL."
    )


class FileTrigger(TriggerBase):
    """A file created, modified or deleted in a folder."""

    type: Literal["file"]
    path: Annotated[str, Field(min_length=1, max_length=4096)] = Field(
        description="The folder to watch (relative paths are under the files root); its "
        "sub-folders are watched too."
    )
    events: list[FileEvent] = Field(
        default_factory=lambda: list(ALL_FILE_EVENTS),
        min_length=1,
        description="Which changes start an execution (default: all three).",
    )
    pattern: Annotated[str, Field(min_length=1, max_length=512)] | None = Field(
        None,
        description="Glob on the file name (`*.csv`), or on the path relative to the folder "
        "when it holds a `/` (`in/*.csv`).",
    )
    debounce_ms: int = Field(
        200, ge=10, le=60_000, description="Changes within this time are handled as one."
    )


TriggerDefinition = (
    ManualTrigger | WebhookTrigger | CronTrigger | IntervalTrigger | QueueTrigger | FileTrigger
)
MODELS: dict[str, type[TriggerBase]] = {
    "manual": ManualTrigger,
    "webhook": WebhookTrigger,
    "cron": CronTrigger,
    "interval": IntervalTrigger,
    "queue": QueueTrigger,
    "file": FileTrigger,
}


def parse(definition: JSON, index: int) -> TriggerBase:
    """One trigger definition, checked.

    Raises:
        WorkflowInvalid: every problem, each at `triggers[index].<field>`.
    """
    where: tuple[str | int, ...] = ("triggers", index)
    if not isinstance(definition, dict):
        raise WorkflowInvalid([Problem(where, "a trigger must be a mapping with a `type`")])
    kind = definition.get("type")
    model = MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        shown = f" (got {kind!r})" if kind is not None else ""
        message = f"must be one of {', '.join(MODELS)}{shown}"
        raise WorkflowInvalid([Problem((*where, "type"), message)])
    try:
        parsed = model.model_validate(definition)
    except ValidationError as exc:
        raise WorkflowInvalid(pydantic_problems(exc, where)) from None
    if isinstance(parsed, QueueTrigger):
        found = _queue_problems(definition, where)
        if found:
            raise WorkflowInvalid(found)
    return parsed


def queue_fields(definition: dict[str, JSON]) -> dict[str, JSON]:
    """A queue definition without the fields every trigger has (`key`, `description`): what
    `conv3n.triggers.queue` checks and builds from."""
    return {k: v for k, v in definition.items() if k not in TriggerBase.model_fields}


def _queue_problems(definition: dict[str, JSON], where: tuple[str | int, ...]) -> list[Problem]:
    """The broker-specific problems `conv3n.triggers.queue` finds (its broker libraries are
    imported only when a trigger is built)."""
    from conv3n.triggers import queue

    found: list[Problem] = queue.validate(queue_fields(definition), where)
    return found


def problems(triggers: JSON) -> list[Problem]:
    """Every problem of a workflow's `triggers` (a list of definitions), each with its place;
    also two triggers with one `key`, and two webhooks on one path and method."""
    if not isinstance(triggers, list):
        return []  # the document's structure check reports it
    found: list[Problem] = []
    keys: dict[str, int] = {}
    routes: dict[tuple[str, str], int] = {}
    for index, definition in enumerate(triggers):
        try:
            parsed = parse(definition, index)
        except WorkflowInvalid as exc:
            found.extend(exc.problems)
            continue
        key = key_of(parsed, index)
        if key in keys:
            message = f"trigger key {key!r} is used by triggers[{keys[key]}] too"
            found.append(Problem(("triggers", index, "key"), message))
        keys.setdefault(key, index)
        if isinstance(parsed, WebhookTrigger):
            route = (parsed.path.strip("/"), parsed.method)
            if route in routes:
                message = f"{parsed.method} {parsed.path} is taken by triggers[{routes[route]}]"
                found.append(Problem(("triggers", index, "path"), message))
            routes.setdefault(route, index)
    return found


def check(triggers: Sequence[JSON]) -> None:
    """Raise WorkflowInvalid listing every problem of these trigger definitions."""
    found = problems(list(triggers))
    if found:
        raise WorkflowInvalid(found)


def key_of(definition: TriggerBase, index: int) -> str:
    """A trigger's key: its `key`, else its position."""
    return definition.key or str(index)


def checked(compile: Callable[[], T], triggers: JSON) -> T:
    """`compile()` (a workflow compilation), with the problems of `triggers` added to its
    own: one WorkflowInvalid lists them all."""
    found = problems(triggers)
    try:
        result = compile()
    except WorkflowInvalid as exc:
        if found:
            raise WorkflowInvalid([*exc.problems, *found]) from None
        raise
    if found:
        raise WorkflowInvalid(found)
    return result
