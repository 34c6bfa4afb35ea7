"""model/workflow.py: the document's structure and its round trip to JSON/YAML form."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from conv3n.cli import blocks as blocks_command
from conv3n.compiler import parse_text
from conv3n.model import Connection, RetryPolicy, Workflow
from tests.conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def example(path: Path) -> Any:
    return parse_text(path.read_text(encoding="utf-8"), name=path.name)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_to_document_round_trips_every_example(path: Path) -> None:
    workflow = Workflow.model_validate(example(path))
    document = workflow.to_document()
    assert Workflow.model_validate(json.loads(json.dumps(document))) == workflow


def test_to_document_keeps_what_the_author_wrote_and_nothing_else() -> None:
    written = {
        "version": 1,
        "nodes": [
            {"id": "a", "type": "std/noop", "on_error": "fail", "retry": {"factor": 2.0}},
            {"id": "b", "type": "std/noop"},
        ],
        "connections": [{"from": "a", "to": "b"}],
    }
    document = Workflow.model_validate(written).to_document()
    assert document["nodes"] == written["nodes"]
    assert "settings" not in document
    assert "triggers" not in document
    assert document["connections"] == written["connections"]


def test_connection_reads_from_and_writes_from() -> None:
    connection = Connection.model_validate({"from": "a", "port": "true", "to": "b"})
    assert connection.source == "a"
    assert connection.to_json() == {"from": "a", "port": "true", "to": "b"}


def test_workflow_node_looks_a_node_up_by_id() -> None:
    workflow = Workflow.model_validate(
        {"version": 1, "nodes": [{"id": "a", "type": "std/noop"}, {"id": "b", "type": "std/set"}]}
    )
    assert workflow.node("b").type == "std/set"
    with pytest.raises(KeyError):
        workflow.node("zz")


def test_workflow_models_are_frozen() -> None:
    workflow = Workflow.model_validate({"version": 1})
    with pytest.raises(ValidationError):
        workflow.name = "renamed"  # type: ignore[misc]


def test_retry_policy_defaults_to_a_single_attempt() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 1
    assert policy.factor >= 1.0


@pytest.mark.parametrize(
    "retry", [{"max_attempts": 0}, {"factor": 0.5}, {"backoff_ms": -1}, {"tries": 3}]
)
def test_retry_policy_rejects_values_out_of_range_and_unknown_keys(retry: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate(retry)


def schema_printed_by_the_cli(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    blocks_command.schema()
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


def test_conv3n_schema_is_a_valid_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = schema_printed_by_the_cli(capsys)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_conv3n_schema_accepts_every_example(capsys: pytest.CaptureFixture[str]) -> None:
    validator = jsonschema.Draft202012Validator(schema_printed_by_the_cli(capsys))
    for path in EXAMPLE_FILES:
        errors = [e.message for e in validator.iter_errors(example(path))]
        assert errors == [], path.name


@pytest.mark.parametrize(
    "document",
    [
        {"nodes": []},
        {"version": 2},
        {"version": 1, "nodes": [{"id": "1a", "type": "std/noop"}]},
        {"version": 1, "nodes": [{"id": "a", "type": "std/noop", "on_error": "ignore"}]},
        {"version": 1, "connections": [{"from": "a"}]},
        {"version": 1, "extra": True},
    ],
)
def test_conv3n_schema_rejects_structurally_invalid_documents(
    capsys: pytest.CaptureFixture[str], document: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator(schema_printed_by_the_cli(capsys))
    assert not validator.is_valid(document)
