"""The storage commands as a user runs them: real `conv3n` processes on a temporary data dir."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from conv3n.storage import schema
from tests.conftest import EXAMPLES, ROOT


@pytest.fixture
def conv3n(tmp_path):
    env = {**os.environ, "CONV3N_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT / "src")}
    env.pop("CONV3N_DATABASE_URL", None)

    def call(*args: str, stdin: str | None = None, extra: dict[str, str] | None = None):
        result = subprocess.run(
            [sys.executable, "-m", "conv3n", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**env, **(extra or {})},
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return call


FAILING = """
version: 1
id: flaky
nodes:
  - {id: first, type: std/transform, config: {template: {n: "{{ $input.n }}"}}}
  - {id: check, type: std/condition, config: {expression: "{{ $node.first.data.n > 0 }}"}}
  - {id: boom, type: std/fail, config: {message: "n was {{ $node.first.data.n }}"}}
  - {id: fine, type: std/noop}
connections:
  - {from: first, to: check}
  - {from: check, port: "false", to: boom}
  - {from: check, port: "true", to: fine}
"""


def test_stored_runs_are_listed_and_shown(conv3n):
    ran = conv3n(
        "run", "--store", str(EXAMPLES / "hello.yaml"), "--input", '{"name": "Ada"}', "--json"
    )
    assert ran.returncode == 0, ran.stderr
    record = json.loads(ran.stdout)
    listed = json.loads(conv3n("executions", "list", "--json").stdout)
    assert [e["execution_id"] for e in listed] == [record["execution_id"]]
    shown = conv3n("executions", "show", record["execution_id"], "--json")
    assert json.loads(shown.stdout)["nodes"] == record["nodes"]
    human = conv3n("executions", "list")
    assert "hello" in human.stdout
    assert "success" in human.stdout


def test_a_repeated_idempotency_key_returns_the_first_execution(conv3n):
    args = ["run", str(EXAMPLES / "hello.yaml"), "--idempotency-key", "order-1", "--json"]
    first = json.loads(conv3n(*args, "--input", '{"name": "Ada"}').stdout)
    second = json.loads(conv3n(*args, "--input", '{"name": "Bob"}').stdout)
    assert second["execution_id"] == first["execution_id"]
    assert second["input"] == {"name": "Ada"}
    assert len(json.loads(conv3n("executions", "list", "--json").stdout)) == 1


def test_retry_and_fork_of_a_failed_execution(conv3n, tmp_path):
    path = tmp_path / "flaky.yaml"
    path.write_text(FAILING)
    failed = conv3n("run", "--store", str(path), "--input", '{"n": -1}', "--json")
    assert failed.returncode == 1
    failed_id = json.loads(failed.stdout)["execution_id"]
    retried = conv3n("executions", "retry", failed_id, "--json")
    assert retried.returncode == 1  # the stored input still fails: retry is honest about it
    assert json.loads(retried.stdout)["mode"] == "retry"
    forked = conv3n("executions", "fork", failed_id, "check", "--json")
    assert json.loads(forked.stdout)["mode"] == "fork"
    missing = conv3n("executions", "fork", failed_id, "nope")
    assert missing.returncode == 2
    assert "nope" in missing.stderr


def test_retry_of_a_successful_execution_is_refused(conv3n):
    ok = json.loads(conv3n("run", "--store", str(EXAMPLES / "hello.yaml"), "--json").stdout)
    refused = conv3n("executions", "retry", ok["execution_id"])
    assert refused.returncode == 1
    assert "only failed or cancelled" in refused.stderr


def test_unknown_execution_is_a_clear_error(conv3n):
    shown = conv3n("executions", "show", "no-such-id")
    assert shown.returncode == 1
    assert "no execution has id 'no-such-id'" in shown.stderr


def test_secrets_come_from_stdin_and_are_never_printed(conv3n):
    stored = conv3n("secrets", "set", "api_token", stdin="s3cr3t-value\n")
    assert stored.returncode == 0, stored.stderr
    listed = conv3n("secrets", "list", "--json")
    assert [s["name"] for s in json.loads(listed.stdout)] == ["api_token"]
    assert "s3cr3t" not in listed.stdout
    bad = conv3n("secrets", "set", "bad-name", stdin="x")
    assert bad.returncode == 2
    assert "secret name" in bad.stderr
    assert conv3n("secrets", "delete", "api_token").returncode == 0
    assert conv3n("secrets", "delete", "api_token").returncode == 1


def test_workflows_import_then_export_is_an_exact_round_trip(conv3n, tmp_path):
    imported = conv3n("workflows", "import", str(EXAMPLES))
    assert imported.returncode == 0, imported.stderr
    out = tmp_path / "exported"
    assert conv3n("workflows", "export", str(out)).returncode == 0
    for path in out.glob("*.yaml"):
        exported = yaml.safe_load(path.read_text())
        original = next(
            p
            for p in EXAMPLES.glob("*.yaml")
            if (yaml.safe_load(p.read_text()).get("id") or p.stem) == path.stem
        )
        source = yaml.safe_load(original.read_text())
        source.setdefault("id", path.stem)
        assert exported == source, path.name
    again = conv3n("workflows", "import", str(out))
    assert "version 2" not in again.stdout


def test_backup_copies_the_database(conv3n, tmp_path):
    conv3n("run", "--store", str(EXAMPLES / "hello.yaml"))
    target = tmp_path / "copy.db"
    made = conv3n("backup", str(target))
    assert made.returncode == 0, made.stderr
    import sqlite3

    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM executions").fetchone()[0] == 1


def test_backup_of_postgres_says_what_to_run(conv3n):
    said = conv3n("backup", extra={"CONV3N_DATABASE_URL": "postgresql://u:pw@db.example/prod"})
    assert said.returncode == 0
    assert "pg_dump" in said.stdout
    assert "pw" not in said.stdout


def test_db_upgrade_then_prune(conv3n):
    first = conv3n("db", "upgrade")
    assert f"revision {schema.HEAD}" in first.stdout
    assert "already at" in conv3n("db", "upgrade").stdout
    pruned = conv3n("executions", "prune")
    assert pruned.returncode == 0
    assert "pruned 0 executions" in pruned.stdout


def test_a_bad_setting_names_the_variable(conv3n):
    said = conv3n("executions", "list", extra={"CONV3N_RETENTION_DAYS": "soon"})
    assert said.returncode == 2
    assert "CONV3N_RETENTION_DAYS" in said.stderr


WAITING = """
version: 1
id: approve
nodes:
  - {id: ask, type: std/wait, config: {for: approval}}
  - {id: done, type: std/transform, config: {template: "{{ $node.ask.data.by }} said yes"}}
connections:
  - {from: ask, to: done}
"""


def test_a_stored_wait_is_resumed_from_the_command_line(conv3n, tmp_path):
    workflow = tmp_path / "approve.yaml"
    workflow.write_text(WAITING)
    ran = conv3n("run", "--store", str(workflow), "--json")
    record = json.loads(ran.stdout)
    assert record["status"] == "waiting", ran.stderr
    no_id = conv3n("executions", "resume", "--payload", "{}")
    assert no_id.returncode == 2
    assert "--payload and --node need an execution id" in no_id.stderr
    resumed = conv3n(
        "executions", "resume", record["execution_id"], "--payload", '{"by": "Ada"}', "--json"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == "Ada said yes"
    again = conv3n("executions", "resume", record["execution_id"], "--payload", "{}")
    assert again.returncode == 1
    assert "not waiting" in again.stderr
