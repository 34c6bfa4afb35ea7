"""`conv3n` as users run it: a real subprocess, black box (SPEC §6 and §7).

Every call asserts that stderr holds no Python traceback: user errors are messages.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT

HELLO = EXAMPLES / "hello.yaml"
RECORD_KEYS = {
    "execution_id",
    "workflow_id",
    "status",
    "mode",
    "started_at",
    "finished_at",
    "duration_ms",
    "input",
    "output",
    "error",
    "nodes",
}
NODE_KEYS = {"status", "data", "error", "attempts", "started_at", "finished_at", "duration_ms"}

FAILING = """\
version: 1
id: failing
nodes:
  - id: start
    type: std/set
    config: {values: {n: 1}}
  - id: boom
    type: std/fail
    config: {message: "stock for {{ $input.sku }} is gone"}
  - id: after
    type: std/noop
connections:
  - {from: start, to: boom}
  - {from: boom, to: after}
"""

INVALID = """\
version: 1
nodes:
  - id: 2fetch
    type: std/http_request
    config: {url: "not a url"}
  - id: shape
    type: std/transmogrify
  - id: use
    type: std/transform
    config: {template: "{{ $node.nowhere.data + }}"}
connections:
  - {from: shape, to: ghost}
"""


ALIAS_BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def conv3n(
    *args: str, stdin: str | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "conv3n", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "internal error" not in done.stderr, done.stderr
    return done


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def record_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(done.stdout)
    return record


# --- run ------------------------------------------------------------------------------------


def test_run_succeeds_with_exit_0_and_prints_a_node_summary() -> None:
    done = conv3n("run", str(HELLO), "--input", '{"name": "Ada"}')
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"node\s+status\s+duration\s+attempts", lines[0])
    assert re.search(r"^greet\s+success\s+\d+\.\d+ ms\s+1$", done.stdout, re.MULTILINE)
    assert re.search(r"^long_name\s+skipped\s+-\s+-$", done.stdout, re.MULTILINE)
    assert re.search(r"execution \S+: success in \d+\.\d+ m?s", done.stdout)
    assert '"message": "Hello, Ada!"' in done.stdout


def test_run_shows_sub_millisecond_durations_with_precision() -> None:
    done = conv3n("run", str(HELLO))
    durations = re.findall(r"(\d+)\.(\d+) ms", done.stdout)
    assert len(durations) == 5, done.stdout
    for whole, fraction in durations:
        if whole == "0":
            assert len(fraction) == 3, done.stdout
        else:
            assert len(fraction) in (1, 2), done.stdout


def test_run_json_prints_the_execution_record() -> None:
    done = conv3n("run", str(HELLO), "--input", '{"name": "Grace Hopper"}', "--json")
    assert done.returncode == 0, done.stderr
    record = record_of(done)
    assert set(record) >= RECORD_KEYS
    assert record["status"] == "success"
    assert record["workflow_id"] == "hello"
    assert record["mode"] == "manual"
    assert record["input"] == {"name": "Grace Hopper"}
    assert record["output"] == {"message": "Hello, Grace Hopper!", "kind": "long"}
    assert record["error"] is None
    assert isinstance(record["duration_ms"], float)
    for node in record["nodes"].values():
        assert set(node) >= NODE_KEYS
    assert record["nodes"]["greet"]["attempts"] == 1
    assert record["nodes"]["short_name"]["status"] == "skipped"


def test_run_of_a_failing_workflow_exits_1_with_the_error_in_the_record(tmp_path: Path) -> None:
    path = write(tmp_path, "failing.yaml", FAILING)
    done = conv3n("run", str(path), "--input", '{"sku": "A-1"}', "--json")
    assert done.returncode == 1
    record = record_of(done)
    assert record["status"] == "error"
    assert record["error"]["node"] == "boom"
    assert record["error"]["message"] == "stock for A-1 is gone"
    assert {"type", "message", "node", "details"} <= set(record["error"])
    assert record["nodes"]["boom"]["status"] == "error"
    assert record["nodes"]["start"]["status"] == "success"


def test_run_of_a_failing_workflow_names_the_node_and_error_in_the_summary(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "failing.yaml", FAILING)
    done = conv3n("run", str(path), "--input", '{"sku": "A-1"}')
    assert done.returncode == 1
    assert re.search(r"^boom\s+error\s", done.stdout, re.MULTILINE)
    assert "stock for A-1 is gone" in done.stdout
    assert re.search(r"execution \S+: error", done.stdout)


def test_run_of_an_invalid_workflow_exits_2_listing_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "invalid.yaml", INVALID)
    done = conv3n("run", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    for place in (
        "nodes[0].id",
        "nodes[0].config.url",
        "nodes[1].type",
        "nodes[2].config.template",
        "connections[0].to",
    ):
        assert place in done.stderr, done.stderr
    assert "5 problems" in done.stderr


def test_run_json_of_an_invalid_workflow_prints_the_problems_as_json(tmp_path: Path) -> None:
    path = write(tmp_path, "invalid.yaml", INVALID)
    done = conv3n("run", str(path), "--json")
    assert done.returncode == 2
    error = record_of(done)["error"]
    assert error["type"] == "workflow_invalid"
    paths = [p["path"] for p in error["details"]["problems"]]
    assert paths == [
        "nodes[0].id",
        "nodes[0].config.url",
        "nodes[1].type",
        "nodes[2].config.template",
        "connections[0].to",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{name: Ada}", "--input is not valid JSON (line 1, column 2)"),
        ("@missing-input.json", "cannot read input file missing-input.json"),
    ],
)
def test_run_with_bad_input_exits_2_with_a_message(value: str, message: str) -> None:
    done = conv3n("run", str(HELLO), "--input", value)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


def test_run_reads_input_from_a_file(tmp_path: Path) -> None:
    payload = write(tmp_path, "payload.json", '{"name": "Lin"}')
    done = conv3n("run", str(HELLO), "--input", f"@{payload}", "--json")
    assert record_of(done)["output"]["message"] == "Hello, Lin!"


def test_run_reads_input_from_standard_input() -> None:
    done = conv3n("run", str(HELLO), "--input", "-", "--json", stdin='{"name": "Stdin"}')
    assert done.returncode == 0, done.stderr
    assert record_of(done)["input"] == {"name": "Stdin"}


def test_run_of_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = conv3n("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "no workflow file at" in done.stderr


def test_run_of_a_folder_exits_2(tmp_path: Path) -> None:
    done = conv3n("run", str(tmp_path))
    assert done.returncode == 2
    assert "is a folder, not a workflow file" in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "must be a mapping"),
        ("version: 1\nnodes: [\n", "not valid YAML (line 3, column 1)"),
        (ALIAS_BOMB, "YAML aliases expand"),
    ],
    ids=["not-a-mapping", "bad-yaml", "alias-bomb"],
)
def test_run_of_a_hostile_document_exits_2_with_a_message(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, "hostile.yaml", text)
    done = conv3n("run", str(path))
    assert done.returncode == 2
    assert message in done.stderr


def test_run_of_a_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    done = conv3n("run", str(path))
    assert done.returncode == 2
    assert "cannot read" in done.stderr


def test_run_with_a_missing_sub_workflow_fails_the_node_with_exit_1(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "parent.yaml",
        "version: 1\nnodes:\n  - id: child\n    type: std/subworkflow\n"
        "    config: {workflow: not-there.yaml}\n",
    )
    done = conv3n("run", str(path), "--json")
    assert done.returncode == 1
    record = record_of(done)
    assert record["error"]["node"] == "child"
    assert "not-there.yaml" in record["error"]["message"]


# --- validate -------------------------------------------------------------------------------


def test_validate_lists_every_problem_of_every_file_and_exits_2(tmp_path: Path) -> None:
    invalid = write(tmp_path, "invalid.yaml", INVALID)
    broken = write(tmp_path, "broken.json", '{"version": 1,\n "nodes": [}')
    missing = tmp_path / "missing.yaml"
    done = conv3n("validate", str(HELLO), str(invalid), str(broken), str(missing))
    assert done.returncode == 2
    out = done.stdout
    assert f"{HELLO}: valid" in out
    assert f"{invalid}: invalid, 5 problems" in out
    assert re.search(r"^  nodes\[1\]\.type\s+unknown block type 'std/transmogrify'$", out, re.M)
    assert re.search(r"^  connections\[0\]\.to\s+no node has id 'ghost'$", out, re.M)
    assert f"{broken}: invalid, 1 problem" in out
    assert "not valid JSON (line 2, column 12)" in out
    assert f"{missing}: invalid, 1 problem" in out
    assert "no workflow file at" in out
    assert "4 files: 1 valid, 3 invalid (7 problems)" in out


def test_validate_of_valid_files_exits_0() -> None:
    done = conv3n("validate", str(HELLO), str(EXAMPLES / "loop_batch.yaml"))
    assert done.returncode == 0
    assert "2 files: 2 valid, 0 invalid" in done.stdout


def test_validate_json_maps_each_file_to_its_problems(tmp_path: Path) -> None:
    invalid = write(tmp_path, "invalid.yaml", INVALID)
    done = conv3n("validate", "--json", str(HELLO), str(invalid))
    assert done.returncode == 2
    result = record_of(done)
    assert result[str(HELLO)] == []
    problems = result[str(invalid)]
    assert [p["path"] for p in problems][:2] == ["nodes[0].id", "nodes[0].config.url"]
    assert all(set(p) == {"path", "message"} for p in problems)
    assert len(problems) == 5


# --- blocks and schema ----------------------------------------------------------------------


def test_blocks_lists_every_std_block_with_its_ports() -> None:
    done = conv3n("blocks")
    assert done.returncode == 0
    assert re.search(r"std/condition\s+true, false", done.stdout)
    for block in ("std/http_request", "std/transform", "std/loop", "std/switch"):
        assert block in done.stdout


def test_blocks_json_gives_type_ports_and_config_schema_of_each_block() -> None:
    done = conv3n("blocks", "--json")
    assert done.returncode == 0
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    by_type = {block["type"]: block for block in listed}
    for block in listed:
        assert set(block) >= {"type", "description", "ports", "config_schema"}
        assert block["config_schema"]["type"] == "object"
    assert by_type["std/condition"]["ports"] == ["true", "false"]
    assert "url" in by_type["std/http_request"]["config_schema"]["required"]


def test_schema_prints_the_workflow_json_schema() -> None:
    done = conv3n("schema")
    assert done.returncode == 0
    schema = record_of(done)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"version", "nodes", "connections"} <= set(schema["properties"])


# --- help, version, usage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "teaches"),
    [
        ((), "conv3n run examples/hello.yaml"),
        (("run",), "--input @payload.json"),
        (("validate",), "conv3n validate examples/*.yaml"),
        (("blocks",), "conv3n blocks --json"),
        (("schema",), "conv3n schema > conv3n.schema.json"),
    ],
    ids=["conv3n", "run", "validate", "blocks", "schema"],
)
def test_help_of_each_command_shows_examples(command: tuple[str, ...], teaches: str) -> None:
    done = conv3n(*command, "--help")
    assert done.returncode == 0
    assert "Usage:" in done.stdout
    assert teaches in done.stdout


def test_version_prints_the_version() -> None:
    done = conv3n("--version")
    assert done.returncode == 0
    assert re.fullmatch(r"conv3n \d+\.\d+\.\d+\S*\n", done.stdout)


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    done = conv3n("launch", "wf.yaml")
    assert done.returncode == 2
    assert "No such command" in done.stderr


def test_recursive_sub_workflow_fails_with_one_readable_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "again.yaml",
        "version: 1\nnodes:\n  - id: again\n    type: std/subworkflow\n"
        "    config: {workflow: again.yaml}\n",
    )
    done = conv3n("run", str(path), "--json")
    assert done.returncode == 1
    message = record_of(done)["error"]["message"]
    assert "nest deeper than 10 levels" in message
    assert message.count("sub-workflow 'again.yaml' failed") <= 1, message
