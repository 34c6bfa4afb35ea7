"""Every examples/*.yaml runs through the real CLI with the input its header declares.

Header lines (comments at the top of an example):
  `# input: {...}`     the $input; `{upstream}` is replaced by the local test server's address
  `# upstream: {...}`  a route the test server answers: {"path", "status" (200), "body"}
  `# expect: {...}`    a subset the execution's output must contain
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT, Upstream

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


@dataclass
class Header:
    """What an example's header comments declare."""

    input: str | None = None
    expect: Any = None
    upstream: list[dict[str, Any]] = field(default_factory=list)


def read_header(path: Path) -> Header:
    header = Header()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line.lstrip("# ").partition(": ")
        if key == "input":
            header.input = value
        elif key == "expect":
            header.expect = json.loads(value)
        elif key == "upstream":
            header.upstream.append(json.loads(value))
    return header


def contains(actual: Any, expected: Any) -> bool:
    """Whether `expected` is a subset of `actual` (objects by key, lists item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def test_examples_folder_has_examples_to_run() -> None:
    assert len(EXAMPLE_FILES) >= 6


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_runs_successfully_with_its_declared_input(
    path: Path, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    header = read_header(path)
    assert header.input is not None, f"{path.name} has no `# input:` header line"
    assert header.expect is not None, f"{path.name} has no `# expect:` header line"
    payload = header.input
    if header.upstream:
        # Only examples that call HTTP get a server: shutting one down takes a while.
        upstream: Upstream = request.getfixturevalue("upstream")
        for route in header.upstream:
            upstream.route(route["path"], status=route.get("status", 200), body=route.get("body"))
        payload = payload.replace("{upstream}", upstream.url("").rstrip("/"))

    done = subprocess.run(
        [sys.executable, "-m", "conv3n", "run", str(path), "--input", payload, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
        # std/file examples write here, not into the repository's .conv3n/files
        env={**os.environ, "CONV3N_FILES_ROOT": str(tmp_path / "files")},
    )

    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "success"
    assert contains(record["output"], header.expect), json.dumps(record["output"], indent=2)
    if header.upstream:
        served = {r.path.split("?")[0] for r in upstream.requests}
        assert {route["path"] for route in header.upstream} <= served


def test_every_example_is_valid_and_documents_how_to_run_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conv3n", "validate", *map(str, EXAMPLE_FILES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in EXAMPLE_FILES:
        assert f"conv3n run examples/{path.name}" in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize(
    ("actual", "expected", "result"),
    [
        ({"a": 1, "b": [1, {"c": 2, "d": 3}]}, {"b": [1, {"c": 2}]}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, 2]}, {"a": [1]}, False),
        ({"a": None}, {"b": None}, False),
    ],
)
def test_expected_output_is_matched_as_a_subset(actual: Any, expected: Any, result: bool) -> None:
    assert contains(actual, expected) is result
