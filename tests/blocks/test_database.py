"""std/database against real SQLite files, the local PostgreSQL and the local MariaDB."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conv3n.blocks.std import sql_pool
from conv3n.engine import Engine
from conv3n.errors import WorkflowInvalid
from conv3n.model import JSON, NodeRecord
from conv3n.testing import run_block, run_workflow
from tests.conftest import free_port, require_service

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mariadb://root@127.0.0.1:3306/test"
INJECTION = "'; DROP TABLE victims; --"
INSERT = "INSERT INTO @T (name) VALUES (:n)"
COUNT = "SELECT count(*) AS n FROM @T"


async def sql(url: str, query: str, params: dict[str, JSON] | None = None, **more: Any) -> JSON:
    """Run one query through the block; its data (fails the test when the node fails)."""
    record = await run_block(
        "std/database", {"url": url, "query": query, "params": params or {}, **more}
    )
    assert record.status == "success", record.error
    return record.data


async def failed(config: dict[str, Any], **kwargs: Any) -> NodeRecord:
    record = await run_block("std/database", config, **kwargs)
    assert record.status == "error"
    assert record.error is not None
    return record


def on(table: str, query: str) -> str:
    """`query` with @T replaced by a test's own table name (identifiers cannot be bound)."""
    return query.replace("@T", table)


def rows(data: JSON) -> list[Any]:
    assert isinstance(data, dict)
    found = data["rows"]
    assert isinstance(found, list)
    return found


async def fifty_at_once(url: str, query: str) -> JSON:
    """`query` run 50 times at once (a std/loop with concurrency 50), `:i` = 0..49."""
    body = {
        "nodes": [
            {
                "id": "q",
                "type": "std/database",
                "config": {"url": url, "query": query, "params": {"i": "{{ $item }}"}},
            }
        ]
    }
    record = await run_workflow(
        {
            "nodes": [
                {
                    "id": "each",
                    "type": "std/loop",
                    "config": {"items": "{{ range(50) }}", "concurrency": 50, "body": body},
                }
            ]
        }
    )
    assert record.status == "success", record.error
    return record.output


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
async def victims(sqlite_url: str) -> str:
    """A SQLite file holding `victims (id INTEGER PRIMARY KEY, name TEXT UNIQUE)`."""
    await sql(sqlite_url, "CREATE TABLE victims (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    return sqlite_url


# --- SQLite -------------------------------------------------------------------------------


async def test_named_params_are_bound_and_rows_come_back_as_objects(sqlite_url: str) -> None:
    data = await sql(sqlite_url, "SELECT :a AS a, :b AS b, :c AS c", {"a": 1, "b": "x", "c": None})

    assert data == {"rows": [{"a": 1, "b": "x", "c": None}], "rowcount": 1}


async def test_params_may_hold_expressions_and_their_values_stay_data(victims: str) -> None:
    record = await run_block(
        "std/database",
        {
            "url": victims,
            "query": "INSERT INTO victims (name) VALUES (:name) RETURNING id, name",
            "params": {"name": "{{ $input.name }}"},
        },
        input={"name": INJECTION},
    )

    assert record.status == "success", record.error
    assert rows(record.data) == [{"id": 1, "name": INJECTION}]
    assert rows(await sql(victims, "SELECT name FROM victims")) == [{"name": INJECTION}]


async def test_sql_injection_through_params_is_compared_as_text(victims: str) -> None:
    await sql(victims, "INSERT INTO victims (name) VALUES ('ada')")
    hostile = ["' OR '1'='1", INJECTION, "ada' --", "1; DELETE FROM victims"]

    for text in hostile:
        found = await sql(victims, "SELECT * FROM victims WHERE name = :n", {"n": text})
        assert rows(found) == []
    tables = await sql(victims, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert rows(tables) == [{"name": "victims"}]
    assert rows(await sql(victims, "SELECT count(*) AS n FROM victims")) == [{"n": 1}]


async def test_an_expression_in_query_is_refused_with_a_hint_to_use_params(
    sqlite_url: str,
) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block(
            "std/database",
            {"url": sqlite_url, "query": "SELECT * FROM t WHERE name = '{{ $input.name }}'"},
        )

    problems = {p.where: p.message for p in caught.value.problems}
    assert "nodes[0].config.query" in problems
    assert "params" in problems["nodes[0].config.query"]


async def test_an_expression_in_a_statement_query_is_refused(sqlite_url: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block(
            "std/database",
            {
                "url": sqlite_url,
                "statements": [
                    {"query": "SELECT 1"},
                    {"query": "DELETE FROM t WHERE id = {{ $input.id }}"},
                ],
            },
        )

    paths = [p.where for p in caught.value.problems]
    assert paths == ["nodes[0].config.statements[1].query"]


@pytest.mark.parametrize(
    ("statements", "path"),
    [
        ("{{ $input.statements }}", "nodes[0].config.statements"),
        (["{{ $input.statements[0] }}"], "nodes[0].config.statements[0]"),
    ],
)
async def test_statements_computed_by_an_expression_are_refused(
    sqlite_url: str, statements: JSON, path: str
) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block(
            "std/database",
            {"url": sqlite_url, "statements": statements},
            input={"statements": [{"query": "DROP TABLE victims"}]},
        )

    (problem,) = caught.value.problems
    assert problem.where == path
    assert "statements must be written out in the workflow" in problem.message


async def test_an_escaped_expression_in_query_is_refused_too(sqlite_url: str) -> None:
    with pytest.raises(WorkflowInvalid, match="expressions are not allowed in SQL"):
        await run_block("std/database", {"url": sqlite_url, "query": "SELECT '\\{{ x }}'"})


async def test_statement_params_render_expressions(victims: str) -> None:
    record = await run_block(
        "std/database",
        {
            "url": victims,
            "statements": [
                {
                    "query": "INSERT INTO victims (name) VALUES (:n)",
                    "params": {"n": "{{ $input }}"},
                },
                {"query": "SELECT name FROM victims"},
            ],
        },
        input="grace",
    )

    assert record.status == "success", record.error
    assert record.data == {
        "results": [{"rows": [], "rowcount": 1}, {"rows": [{"name": "grace"}], "rowcount": 1}],
        "rows": [{"name": "grace"}],
        "rowcount": 1,
    }


async def test_statements_roll_back_together_when_one_fails(victims: str) -> None:
    record = await failed(
        {
            "url": victims,
            "statements": [
                {"query": "INSERT INTO victims (name) VALUES ('a')"},
                {"query": "CREATE TABLE extra (x INTEGER)"},
                {"query": "INSERT INTO victims (name) VALUES ('a')"},
            ],
        }
    )

    assert record.error is not None
    assert record.error.message.startswith("statements[2] failed: UNIQUE constraint failed")
    assert rows(await sql(victims, "SELECT count(*) AS n FROM victims")) == [{"n": 0}]
    tables = await sql(victims, "SELECT name FROM sqlite_master WHERE type = 'table'")
    assert rows(tables) == [{"name": "victims"}]


async def test_a_single_query_commits_on_success(victims: str) -> None:
    changed = await sql(victims, "INSERT INTO victims (name) VALUES ('a'), ('b')")

    assert changed == {"rows": [], "rowcount": 2}
    assert rows(await sql(victims, "SELECT count(*) AS n FROM victims")) == [{"n": 2}]


async def test_sqlite_values_become_json(sqlite_url: str) -> None:
    data = await sql(
        sqlite_url,
        "SELECT 1.5 AS f, X'00FF' AS blob, NULL AS absent, json_extract(:doc, '$.a') AS a, "
        ":flag AS flag, :ids AS ids",
        {"doc": {"a": [1, 2]}, "flag": True, "ids": [1, 2]},
    )

    assert rows(data) == [
        {
            "f": 1.5,
            "blob": {"base64": "AP8="},
            "absent": None,
            "a": "[1,2]",
            "flag": 1,
            "ids": "[1,2]",
        }
    ]


async def test_a_missing_param_is_named(sqlite_url: str) -> None:
    record = await failed({"url": sqlite_url, "query": "SELECT :a, :b", "params": {"a": 1}})

    assert record.error is not None
    assert record.error.message.startswith("config.params has no value for :b")
    assert record.error.details["missing"] == ["b"]


async def test_a_missing_param_of_a_statement_names_the_statement(sqlite_url: str) -> None:
    record = await failed(
        {"url": sqlite_url, "statements": [{"query": "SELECT 1"}, {"query": "SELECT :x"}]}
    )

    assert record.error is not None
    assert record.error.message.startswith("config.statements[1].params has no value for :x")


async def test_params_the_query_does_not_use_are_ignored(sqlite_url: str) -> None:
    data = await sql(sqlite_url, "SELECT :a AS a", {"a": 1, "unused": 2, "not a name": 3})

    assert rows(data) == [{"a": 1}]


async def test_an_integer_sqlite_cannot_store_fails_naming_params(sqlite_url: str) -> None:
    record = await failed({"url": sqlite_url, "query": "SELECT :x", "params": {"x": 10**30}})

    assert record.error is not None
    assert record.error.type == "block_error"
    assert record.error.message == (
        "config.params: Python int too large to convert to SQLite INTEGER"
    )


@pytest.mark.postgres
async def test_postgres_hostile_text_is_bound_or_refused_by_the_server() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    text = "é🎉 \\' \" ; -- /* */"
    data = await sql(PG_URL, "SELECT :t AS t, :big AS big", {"t": text, "big": 10**30})
    nul = await failed({"url": PG_URL, "query": "SELECT :t", "params": {"t": "a\x00b"}})

    assert rows(data) == [{"t": text, "big": str(10**30)}]
    assert nul.error is not None
    assert "NUL" in nul.error.message


async def test_a_syntax_error_gives_the_database_message_and_is_not_retried(
    sqlite_url: str,
) -> None:
    record = await failed(
        {"url": sqlite_url, "query": "SELEC 1"}, retry={"max_attempts": 3, "backoff_ms": 1}
    )

    assert record.error is not None
    assert record.error.message == 'query failed: near "SELEC": syntax error'
    assert "Traceback" not in record.error.message
    assert record.attempts == 1


async def test_a_missing_table_gives_the_database_message(sqlite_url: str) -> None:
    record = await failed({"url": sqlite_url, "query": "SELECT * FROM nowhere"})

    assert record.error is not None
    assert record.error.message == "query failed: no such table: nowhere"
    assert record.error.details == {"dialect": "sqlite", "code": "SQLITE_ERROR"}


@pytest.mark.slow
async def test_a_huge_result_over_max_rows_fails_clearly(sqlite_url: str) -> None:
    query = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
        "SELECT i FROM n"
    )
    record = await failed({"url": sqlite_url, "query": query})

    assert record.error is not None
    assert "more than max_rows (10,000) rows" in record.error.message
    assert record.data is None
    data = await sql(sqlite_url, query, max_rows=100_000)
    assert isinstance(data, dict)
    assert data["rowcount"] == 100_000


async def test_a_result_of_exactly_max_rows_is_returned(sqlite_url: str) -> None:
    query = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
        "SELECT i FROM n"
    )

    assert len(rows(await sql(sqlite_url, query, max_rows=5))) == 5
    record = await failed({"url": sqlite_url, "query": query, "max_rows": 4})
    assert record.error is not None
    assert "max_rows (4)" in record.error.message


async def test_max_rows_over_the_cap_is_a_config_error(sqlite_url: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block("std/database", {"url": sqlite_url, "query": "SELECT 1", "max_rows": 10**9})

    assert [p.where for p in caught.value.problems] == ["nodes[0].config.max_rows"]


async def test_fifty_concurrent_queries_share_one_pool(victims: str) -> None:
    await sql(victims, "INSERT INTO victims (name) VALUES ('a')")

    output = await fifty_at_once(victims, "SELECT :i AS i, count(*) AS n FROM victims")

    assert output == [{"rows": [{"i": i, "n": 1}], "rowcount": 1} for i in range(50)]


async def test_an_in_memory_database_lives_across_nodes_of_a_workflow() -> None:
    url = "sqlite:///:memory:"
    record = await run_workflow(
        {
            "nodes": [
                {
                    "id": "make",
                    "type": "std/database",
                    "config": {"url": url, "query": "CREATE TABLE t (x INTEGER)"},
                },
                {
                    "id": "fill",
                    "type": "std/database",
                    "config": {"url": url, "query": "INSERT INTO t VALUES (7)"},
                },
                {
                    "id": "read",
                    "type": "std/database",
                    "config": {"url": url, "query": "SELECT x FROM t"},
                },
            ],
            "connections": [{"from": "make", "to": "fill"}, {"from": "fill", "to": "read"}],
        }
    )

    assert record.status == "success", record.error
    assert record.output == {"rows": [{"x": 7}], "rowcount": 1}


# --- configuration, URLs and credentials ---------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"query": "SELECT 1"}, "nodes[0].config.url"),
        ({"url": "sqlite://", "credential": "db", "query": "SELECT 1"}, "nodes[0].config.url"),
        ({"url": "sqlite://"}, "nodes[0].config.query"),
        (
            {"url": "sqlite://", "query": "SELECT 1", "statements": [{"query": "SELECT 1"}]},
            "nodes[0].config.query",
        ),
        ({"url": "sqlite://", "statements": []}, "nodes[0].config.statements"),
        ({"url": "sqlite://", "query": ""}, "nodes[0].config.query"),
        (
            {"url": "sqlite://", "statements": [{"query": "SELECT 1"}], "params": {"a": 1}},
            "nodes[0].config.params",
        ),
        ({"url": "sqlite://", "query": "SELECT 1", "tables": "x"}, "nodes[0].config.tables"),
        ({"url": "not a url", "query": "SELECT 1"}, "nodes[0].config.url"),
        ({"url": "postgresql:///test", "query": "SELECT 1"}, "nodes[0].config.url"),
    ],
)
async def test_bad_config_is_refused_naming_the_field(config: dict[str, Any], path: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block("std/database", config)

    assert path in [p.where for p in caught.value.problems]


async def test_an_unknown_dialect_is_refused_without_showing_the_password() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await run_block(
            "std/database", {"url": "oracle://scott:tiger-pw@db.local/orcl", "query": "SELECT 1"}
        )

    (problem,) = caught.value.problems
    assert problem.where == "nodes[0].config.url"
    assert "unknown database 'oracle'" in problem.message
    assert "tiger-pw" not in str(caught.value)


async def test_a_credential_holds_the_url(sqlite_url: str) -> None:
    record = await run_block(
        "std/database", {"credential": "db", "query": "SELECT 1 AS one"}, secrets={"db": sqlite_url}
    )

    assert record.status == "success", record.error
    assert rows(record.data) == [{"one": 1}]


async def test_an_unknown_credential_is_named() -> None:
    record = await failed({"credential": "no-such-db", "query": "SELECT 1"})

    assert record.error is not None
    assert record.error.type == "secret_not_found"
    assert "no-such-db" in record.error.message


async def test_a_credential_that_is_no_url_fails_without_showing_its_value() -> None:
    record = await failed(
        {"credential": "db", "query": "SELECT 1"}, secrets={"db": "oracle://u:very-secret@h/x"}
    )

    assert record.error is not None
    assert record.error.message.startswith("config.credential: secret 'db' does not hold")
    assert "very-secret" not in record.error.model_dump_json()


async def test_a_refused_connection_is_retryable_and_masks_the_password() -> None:
    url = f"postgresql://app:hunter2-pw@127.0.0.1:{free_port()}/test"
    record = await failed(
        {"url": url, "query": "SELECT 1"}, retry={"max_attempts": 2, "backoff_ms": 1}
    )

    assert record.attempts == 2
    assert record.error is not None
    assert record.error.message.startswith("cannot connect to postgresql+psycopg://app:***@")
    assert "hunter2-pw" not in record.error.model_dump_json()


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
async def pg_table() -> AsyncIterator[str]:
    """A uniquely named table `(id serial PRIMARY KEY, name text UNIQUE)`, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"conv3n_db_{uuid.uuid4().hex[:12]}"
    await sql(PG_URL, on(name, "CREATE TABLE @T (id serial PRIMARY KEY, name text UNIQUE)"))
    yield name
    await sql(PG_URL, on(name, "DROP TABLE IF EXISTS @T"))


@pytest.mark.postgres
async def test_postgres_values_become_json(pg_table: str) -> None:
    data = await sql(
        PG_URL,
        "SELECT :n AS n, :s AS s, true AS b, 1.5::float8 AS f, 12.30::numeric(6,2) AS d, "
        "'2026-12-01 20:00:00+00'::timestamptz AS ts, '2026-12-01'::date AS day, "
        "'12:30:05'::time AS t, interval '1 day 2 hours' AS i, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, '\\x00ff'::bytea AS raw, "
        "CAST(:doc AS jsonb) AS doc, ARRAY[1, 2] AS arr, 'NaN'::float8 AS nan",
        {"n": 7, "s": "x", "doc": {"k": [1, None]}},
    )

    assert rows(data) == [
        {
            "n": 7,
            "s": "x",
            "b": True,
            "f": 1.5,
            "d": "12.30",
            "ts": "2026-12-01T20:00:00+00:00",
            "day": "2026-12-01",
            "t": "12:30:05",
            "i": "P1DT2H",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "raw": {"base64": "AP8="},
            "doc": {"k": [1, None]},
            "arr": [1, 2],
            "nan": "NaN",
        }
    ]


@pytest.mark.postgres
async def test_postgres_statements_roll_back_on_a_unique_violation(pg_table: str) -> None:
    record = await failed(
        {
            "url": PG_URL,
            "statements": [
                {"query": on(pg_table, INSERT), "params": {"n": "a"}},
                {"query": on(pg_table, INSERT), "params": {"n": "a"}},
            ],
        }
    )

    assert record.error is not None
    assert record.error.message.startswith("statements[1] failed: duplicate key value")
    assert record.error.details == {"dialect": "postgresql", "code": "23505"}
    assert rows(await sql(PG_URL, on(pg_table, COUNT))) == [{"n": 0}]


@pytest.mark.postgres
async def test_postgres_injection_through_params_stays_data(pg_table: str) -> None:
    inserted = await sql(PG_URL, on(pg_table, INSERT + " RETURNING name"), {"n": INJECTION})

    assert rows(inserted) == [{"name": INJECTION}]
    found = await sql(
        PG_URL, on(pg_table, "SELECT name FROM @T WHERE name = :n"), {"n": "' OR 1=1 --"}
    )
    assert rows(found) == []
    exists = await sql(PG_URL, "SELECT to_regclass(:t)::text AS t", {"t": pg_table})
    assert rows(exists) == [{"t": pg_table}]


@pytest.mark.postgres
async def test_postgres_missing_table_and_syntax_errors_carry_the_server_message() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    missing = await failed({"url": PG_URL, "query": "SELECT * FROM conv3n_no_such_table"})
    syntax = await failed({"url": PG_URL, "query": "SELEC 1"})

    assert missing.error is not None
    assert syntax.error is not None
    assert 'relation "conv3n_no_such_table" does not exist' in missing.error.message
    assert missing.error.details["code"] == "42P01"
    assert 'syntax error at or near "SELEC"' in syntax.error.message
    assert "[SQL:" not in syntax.error.message


@pytest.mark.postgres
async def test_postgres_fifty_concurrent_queries_share_one_pool(pg_table: str) -> None:
    output = await fifty_at_once(
        PG_URL, on(pg_table, "INSERT INTO @T (name) VALUES ('n' || :i) RETURNING name")
    )

    assert output == [{"rows": [{"name": f"n{i}"}], "rowcount": 1} for i in range(50)]
    assert rows(await sql(PG_URL, on(pg_table, COUNT))) == [{"n": 50}]


@pytest.mark.postgres
async def test_postgres_a_pooled_connection_the_server_closed_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    monkeypatch.setattr(sql_pool, "IDLE_PING_S", 0.0)
    pid_query = "SELECT pg_backend_pid() AS pid"
    async with Engine() as engine:
        first = await run_block("std/database", {"url": PG_URL, "query": pid_query}, engine=engine)
        pid = rows(first.data)[0]["pid"]
        killed = await sql(PG_URL, "SELECT pg_terminate_backend(:pid) AS ok", {"pid": pid})
        second = await run_block("std/database", {"url": PG_URL, "query": pid_query}, engine=engine)

    assert rows(killed) == [{"ok": True}]
    assert second.status == "success", second.error
    assert rows(second.data)[0]["pid"] != pid


# --- MariaDB -------------------------------------------------------------------------------


@pytest.fixture
async def maria_table() -> AsyncIterator[str]:
    """A uniquely named InnoDB table `(id PRIMARY KEY, name UNIQUE)`, dropped afterwards."""
    require_service("MariaDB", "127.0.0.1", 3306)
    name = f"conv3n_db_{uuid.uuid4().hex[:12]}"
    await sql(
        MARIADB_URL,
        on(
            name,
            "CREATE TABLE @T (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) UNIQUE) "
            "ENGINE=InnoDB",
        ),
    )
    yield name
    await sql(MARIADB_URL, on(name, "DROP TABLE IF EXISTS @T"))


@pytest.mark.mariadb
async def test_mariadb_values_become_json(maria_table: str) -> None:
    data = await sql(
        MARIADB_URL,
        "SELECT :n AS n, :s AS s, CAST(12.30 AS DECIMAL(6,2)) AS d, "
        "CAST('2026-12-01 20:00:00' AS DATETIME) AS ts, CAST('2026-12-01' AS DATE) AS day, "
        "CAST('12:30:05' AS TIME) AS t, X'00FF' AS raw, JSON_OBJECT('k', :n) AS doc",
        {"n": 7, "s": "x"},
    )

    assert rows(data) == [
        {
            "n": 7,
            "s": "x",
            "d": "12.30",
            "ts": "2026-12-01T20:00:00",
            "day": "2026-12-01",
            "t": "PT12H30M5S",
            "raw": {"base64": "AP8="},
            "doc": '{"k": 7}',
        }
    ]


@pytest.mark.mariadb
async def test_mariadb_statements_roll_back_on_a_duplicate(maria_table: str) -> None:
    record = await failed(
        {
            "url": MARIADB_URL,
            "statements": [
                {"query": on(maria_table, INSERT), "params": {"n": "a"}},
                {"query": on(maria_table, INSERT), "params": {"n": "a"}},
            ],
        }
    )

    assert record.error is not None
    assert record.error.message.startswith("statements[1] failed: Duplicate entry 'a'")
    assert record.error.details == {"dialect": "mariadb", "code": 1062}
    assert rows(await sql(MARIADB_URL, on(maria_table, COUNT))) == [{"n": 0}]


@pytest.mark.mariadb
async def test_mariadb_injection_through_params_stays_data(maria_table: str) -> None:
    await sql(MARIADB_URL, on(maria_table, INSERT), {"n": INJECTION})

    found = await sql(
        MARIADB_URL, on(maria_table, "SELECT name FROM @T WHERE name = :n"), {"n": INJECTION}
    )
    assert rows(found) == [{"name": INJECTION}]
    tables = await sql(
        MARIADB_URL,
        "SELECT table_name AS t FROM information_schema.tables "
        "WHERE table_schema = 'test' AND table_name = :t",
        {"t": maria_table},
    )
    assert rows(tables) == [{"t": maria_table}]


@pytest.mark.mariadb
async def test_mariadb_missing_table_carries_the_server_message() -> None:
    require_service("MariaDB", "127.0.0.1", 3306)
    record = await failed({"url": MARIADB_URL, "query": "SELECT * FROM conv3n_no_such_table"})

    assert record.error is not None
    assert record.error.message == ("query failed: Table 'test.conv3n_no_such_table' doesn't exist")
    assert record.error.details == {"dialect": "mariadb", "code": 1146}
