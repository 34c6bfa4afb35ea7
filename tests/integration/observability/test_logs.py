"""Structured logs of a Runtime: JSON lines with the execution's ids, secrets masked.

`configure()` takes over the root logger, so each test gets it back afterwards.
"""

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import BaseModel

from conv3n.errors import InvalidInput
from conv3n.observability import logging as logs
from conv3n.runtime import Settings
from conv3n.runtime.service import Runtime
from conv3n.sdk import BlockRegistry, block

SECRET = "sk_live_very_secret_value"


class TalkConfig(BaseModel):
    crash: bool = False


@block("talk")
async def talk(ctx, config: TalkConfig):
    value = await ctx.secret("api_key")
    ctx.log.warning("calling the API with %s", value)
    if config.crash:
        raise RuntimeError(f"boom while holding {value}")
    return {"key": value}


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    try:
        yield out
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logs.use_redactor(None)
        structlog.reset_defaults()


@pytest.fixture
async def runtime(tmp_path):
    registry = BlockRegistry.discover()
    registry.add("test", [talk], origin="(test)")
    settings = Settings.from_env({"CONV3N_DATA_DIR": str(tmp_path)})
    async with Runtime(settings, registry=registry) as rt:
        await rt.secrets.set("api_key", SECRET)
        yield rt


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def flow(
    wid: str, node_type: str = "test/talk", config: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "version": 1,
        "id": wid,
        "nodes": [{"id": "speak", "type": node_type, "config": config or {}}],
    }


async def test_node_log_lines_are_json_with_the_execution_ids_and_no_secret(runtime, stream):
    from conv3n.model import Workflow

    logs.configure(format="json", level="debug", stream=stream)
    logs.use_redactor(runtime.secrets.redactor.value)
    await runtime.save_workflow(Workflow.model_validate(flow("talker")))
    record = await runtime.run_workflow("talker")
    assert SECRET not in stream.getvalue()
    parsed = lines(stream)
    node_line = next(e for e in parsed if e["logger"] == "conv3n.node.speak")
    assert node_line["event"] == "calling the API with [redacted]"
    assert node_line["level"] == "warning"
    assert node_line["execution_id"] == record.execution_id
    assert node_line["workflow_id"] == "talker"
    assert node_line["node_id"] == "speak"
    assert "timestamp" in node_line
    finished = next(e for e in parsed if e["event"] == "execution finished")
    assert finished["status"] == "success"
    assert finished["level"] == "debug"
    assert finished["execution_id"] == record.execution_id
    assert isinstance(finished["duration_ms"], float)


async def test_a_crashing_block_logs_a_masked_traceback_at_error(runtime, stream):
    logs.configure(format="json", stream=stream)
    logs.use_redactor(runtime.secrets.redactor.value)
    plan = runtime.compile(_workflow(flow("crashy", config={"crash": True})))
    await runtime.execute(plan)
    assert SECRET not in stream.getvalue()
    crash = next(e for e in lines(stream) if e["level"] == "error")
    assert crash["node_id"] == "speak"
    assert crash["workflow_id"] == "crashy"
    assert "RuntimeError: boom while holding [redacted]" in crash["exception"]


async def test_a_failing_workflow_is_a_warning_without_a_traceback(runtime, stream):
    logs.configure(format="json", stream=stream)
    plan = runtime.compile(_workflow(flow("failing", "std/fail", {"message": "bad data"})))
    await runtime.execute(plan)
    finished = next(e for e in lines(stream) if e["event"] == "execution finished")
    assert finished["level"] == "warning"
    assert finished["status"] == "error"
    assert finished["error_message"] == "bad data"
    assert all("exception" not in e for e in lines(stream))


def test_console_format_renders_readable_lines_and_the_level_filters(stream):
    logs.configure(format="console", level="warning", stream=stream)
    logging.getLogger("conv3n.test").info("hidden")
    logging.getLogger("conv3n.test").warning("shown %s", "here", extra={"port": 5680})
    text = stream.getvalue()
    assert "hidden" not in text
    assert "shown here" in text
    assert "port" in text
    assert "5680" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_the_format_follows_the_stream_unless_set(stream):
    logs.configure(stream=stream)  # a StringIO is not a terminal: JSON
    logging.getLogger("conv3n.test").warning("plain")
    assert lines(stream)[0]["event"] == "plain"


def test_bad_log_settings_name_the_variable():
    with pytest.raises(InvalidInput, match="CONV3N_LOG_FORMAT"):
        Settings.from_env({"CONV3N_LOG_FORMAT": "xml"})
    with pytest.raises(InvalidInput, match="CONV3N_LOG_LEVEL"):
        Settings.from_env({"CONV3N_LOG_LEVEL": "loud"})
    settings = Settings.from_env({"CONV3N_LOG_FORMAT": "JSON", "CONV3N_LOG_LEVEL": "Debug"})
    assert (settings.log_format, settings.log_level) == ("json", "debug")


def _workflow(document: dict[str, Any]) -> Any:
    from conv3n.model import Workflow

    return Workflow.model_validate(document)
