"""std/database: SQL with bound `:params` on SQLite, PostgreSQL and MySQL/MariaDB (SQLAlchemy Core).

SQL is never built by string interpolation (SPEC §4): `query` and `statements[*].query` are raw
fields the engine does not render, and a `{{` in them is refused, so every value reaches the
database as a bound parameter. One pooled AsyncEngine serves each distinct URL for the whole
process (`ctx.shared`); the engine disposes of it at shutdown.
"""

import functools
import hashlib
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from conv3n.blocks.std import sql_pool, sql_rows
from conv3n.model import JSON
from conv3n.sdk import BlockError, Context, block

if TYPE_CHECKING:
    from sqlalchemy import TextClause
    from sqlalchemy.engine import URL, CursorResult
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

DEFAULT_MAX_ROWS = 10_000
MAX_ROWS_CAP = 1_000_000
MAX_STATEMENTS = 1_000
MAX_SQL_CHARS = 1_000_000
MESSAGE_CHARS = 2_000
# Worth another attempt: the connection broke, the server is busy, or the transaction lost a
# race (deadlock, serialization failure, lock wait) that it may win next time.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300"})
RETRYABLE_MYSQL_CODES = frozenset({1040, 1205, 1213, 2002, 2003, 2006, 2013})
RETRYABLE_SQLITE_NAMES = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def _no_expressions(query: str) -> str:
    if "{{" in query:
        raise PydanticCustomError(
            "sql_expression",
            "expressions are not allowed in SQL: write a :name placeholder in the query and "
            "give its value in params (SQL is never built by string interpolation)",
        )
    return query


Sql = Annotated[
    str,
    Field(min_length=1, max_length=MAX_SQL_CHARS),
    AfterValidator(_no_expressions),
]
Params = Annotated[
    dict[str, JSON],
    Field(
        default_factory=dict,
        description="Values of the query's :name placeholders (expressions allowed); objects "
        "and lists are bound as JSON text; names the query does not use are ignored.",
    ),
]


def _written_out(value: Any) -> Any:
    """`statements` and its items are raw too: an expression there could carry SQL."""
    if isinstance(value, str):
        raise PydanticCustomError(
            "sql_expression",
            "statements must be written out in the workflow, not computed by an expression: "
            "give each {query, params}, and put expressions in params",
        )
    return value


class Statement(BaseModel):
    """One statement of `statements`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    _no_template = model_validator(mode="before")(_written_out)

    query: Sql = Field(description="SQL with :name placeholders; no expressions.")
    params: Params


class DatabaseConfig(BaseModel):
    """Configuration of std/database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None,
        max_length=4096,
        description="Database URL: sqlite:///path/to.db (sqlite:///:memory: for a database "
        "living as long as the process), postgresql://user:pass@host/db, "
        "mysql://user:pass@host/db or mariadb://... Prefer `credential` for passwords.",
    )
    credential: str | None = Field(
        None, min_length=1, description="Name of a stored secret whose value is the URL."
    )
    query: Sql | None = Field(
        None,
        description="One SQL statement with :name placeholders, run in its own transaction. "
        "Expressions are refused here: put them in params.",
    )
    params: Params
    statements: Annotated[list[Statement] | None, BeforeValidator(_written_out)] = Field(
        None,
        min_length=1,
        max_length=MAX_STATEMENTS,
        description="Instead of query: statements run in order in one transaction (all or "
        "nothing), each with its own params.",
    )
    max_rows: int = Field(
        DEFAULT_MAX_ROWS,
        gt=0,
        le=MAX_ROWS_CAP,
        description="A statement returning more rows fails the node (add a LIMIT).",
    )

    @model_validator(mode="after")
    def _one_source_and_one_query(self) -> "DatabaseConfig":
        if (self.url is None) == (self.credential is None):
            _fail(self, "url", "source", "give exactly one of url and credential", None)
        if (self.query is None) == (self.statements is None):
            _fail(self, "query", "statements", "give exactly one of query and statements", None)
        if self.statements is not None and self.params:
            _fail(self, "params", "params", "with statements, give params per statement", None)
        if self.url is not None:
            try:
                sql_pool.parse_url(self.url)
            except ValueError as exc:
                _fail(self, "url", "database_url", str(exc), sql_pool.mask(self.url))
        return self


def _fail(model: BaseModel, field: str, kind: str, message: str, shown: str | None) -> None:
    """A validation error located at `field` (a whole-model error would not name the place)."""
    raise ValidationError.from_exception_data(
        type(model).__name__,
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=(field,), input=shown)],
    )


@block("database", raw=("query", "statements.*.query"))
async def database(ctx: Context, config: DatabaseConfig) -> JSON:
    """Run SQL with bound :params on SQLite, PostgreSQL or MySQL/MariaDB: `{rows, rowcount}`
    for `query`, `{results: [{rows, rowcount}, ...], rows, rowcount}` for `statements`."""
    if config.credential is not None:
        secret = await ctx.secret(config.credential)
        try:
            url = sql_pool.parse_url(secret)
        except ValueError as exc:
            raise BlockError(
                f"config.credential: secret {config.credential!r} does not hold a usable "
                f"database URL: {exc}",
                details={"credential": config.credential},
            ) from None
    else:
        url = sql_pool.parse_url(config.url or "")
    if config.statements is None:
        work = [("config", config.query or "", config.params)]
    else:
        work = [
            (f"config.statements[{i}]", s.query, s.params) for i, s in enumerate(config.statements)
        ]
    bound = [(where, *_bind(where, query, params)) for where, query, params in work]
    key = hashlib.sha256(url.render_as_string(hide_password=False).encode()).hexdigest()
    engine: AsyncEngine = ctx.shared(f"std/database:{key}", lambda: sql_pool.create_engine(url))
    results = await _run(engine, url, bound, config.max_rows)
    if config.statements is None:
        return results[0]
    last = results[-1]
    return {"results": results, "rows": last["rows"], "rowcount": last["rowcount"]}


def _parse(query: str) -> "tuple[TextClause, tuple[str, ...]]":
    """The query as a TextClause and its placeholder names."""
    from sqlalchemy import text

    clause = text(query)
    return clause, tuple(clause.compile().params)


# Workflows repeat the same SQL: parse each distinct (reasonably short) text once.
_parse_cached = functools.lru_cache(maxsize=1024)(_parse)
CACHED_SQL_CHARS = 16_384


def _bind(where: str, query: str, params: dict[str, JSON]) -> "tuple[TextClause, dict[str, Any]]":
    clause, names = (_parse_cached if len(query) <= CACHED_SQL_CHARS else _parse)(query)
    missing = [name for name in names if name not in params]
    if missing:
        shown = ", ".join(f":{name}" for name in missing)
        raise BlockError(
            f"{where}.params has no value for {shown} (the query uses "
            f"{', '.join(':' + n for n in names)}; write a colon that starts no placeholder "
            "as \\:)",
            details={"missing": missing},
        )
    return clause, sql_rows.bind_params({name: params[name] for name in names})


async def _run(
    engine: "AsyncEngine",
    url: "URL",
    bound: "list[tuple[str, TextClause, dict[str, Any]]]",
    max_rows: int,
) -> list[dict[str, JSON]]:
    """Every statement in one transaction: committed when all succeed, else rolled back."""
    from sqlalchemy.exc import DBAPIError, StatementError

    connection = await _connect(engine, url)
    results: list[dict[str, JSON]] = []
    where = "config"
    try:
        async with connection.begin():
            for where, clause, params in bound:
                result = await connection.execute(clause, params)
                results.append(_collect(result, url, max_rows, where))
    except DBAPIError as exc:
        raise _database_error(exc, url, f"{_label(where)} failed") from None
    except StatementError as exc:
        message = _clean(str(exc.orig or exc), url)
        raise BlockError(f"{_label(where)} failed: {message}") from None
    except OverflowError as exc:
        # SQLite's driver refuses integers beyond 64 bits before sending anything.
        raise BlockError(f"{where}.params: {exc}") from None
    finally:
        await connection.close()
    return results


def _label(where: str) -> str:
    return "query" if where == "config" else where.removeprefix("config.")


async def _connect(engine: "AsyncEngine", url: "URL") -> "AsyncConnection":
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    shown = url.render_as_string(hide_password=True)
    try:
        return await engine.connect()
    except PoolTimeout:
        raise BlockError(
            f"every pooled connection to {shown} stayed busy for {sql_pool.POOL_TIMEOUT_S:g} s",
            retryable=True,
            details={"url": shown},
        ) from None
    except DBAPIError as exc:
        error = _database_error(exc, url, f"cannot connect to {shown}")
        error.retryable = True
        raise error from None
    except OSError as exc:
        raise BlockError(
            f"cannot connect to {shown}: {_clean(str(exc), url)}",
            retryable=True,
            details={"url": shown},
        ) from None


def _collect(result: "CursorResult[Any]", url: "URL", max_rows: int, where: str) -> dict[str, JSON]:
    """One statement's `{rows, rowcount}` (rowcount: rows returned, or rows changed)."""
    if not result.returns_rows:
        count = result.rowcount
        return {"rows": [], "rowcount": count if count >= 0 else None}
    keys = [str(key) for key in result.keys()]  # noqa: SIM118 - a Result, not a dict
    raw = result.fetchmany(max_rows + 1)
    if len(raw) > max_rows:
        result.close()
        raise BlockError(
            f"{_label(where)} returned more than max_rows ({max_rows:,}) rows: add a LIMIT, "
            f"or raise max_rows (up to {MAX_ROWS_CAP:,})",
            details={"max_rows": max_rows},
        )
    json_columns = _json_columns(result, url)
    rows = [sql_rows.row_dict(keys, row, json_columns) for row in raw]
    return {"rows": rows, "rowcount": len(rows)}


MYSQL_JSON_TYPE = 245


def _json_columns(result: "CursorResult[Any]", url: "URL") -> frozenset[int]:
    """MySQL sends JSON columns as text tagged with their own type code: parse those."""
    if not url.drivername.startswith(("mysql", "mariadb")):
        return frozenset()
    description = getattr(result.cursor, "description", None) or ()
    return frozenset(i for i, column in enumerate(description) if column[1] == MYSQL_JSON_TYPE)


def _database_error(exc: "DBAPIError", url: "URL", what: str) -> BlockError:
    """The database's own message (no SQL echo, no stack), retryable for transient failures."""
    orig = exc.orig
    message = _clean(str(orig) if orig is not None else str(exc), url)
    code: str | int | None = None
    sqlstate = getattr(orig, "sqlstate", None)
    sqlite_name = getattr(orig, "sqlite_errorname", None)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        # PyMySQL: (errno, message)
        code = args[0]
        transient = code in RETRYABLE_MYSQL_CODES
        if len(args) > 1 and isinstance(args[1], str):
            message = _clean(args[1], url)
    elif isinstance(sqlstate, str):
        code = sqlstate
        transient = sqlstate in RETRYABLE_SQLSTATES or sqlstate.startswith("08")
    elif isinstance(sqlite_name, str):
        code = sqlite_name
        transient = sqlite_name in RETRYABLE_SQLITE_NAMES
    else:
        transient = False
    details: dict[str, JSON] = {"dialect": url.get_backend_name()}
    if code is not None:
        details["code"] = code
    return BlockError(
        f"{what}: {message}",
        retryable=transient or bool(exc.connection_invalidated),
        details=details,
    )


def _clean(message: str, url: "URL") -> str:
    """A driver message, short, without the URL's password."""
    message = message.strip()
    password = url.password
    if password and len(str(password)) >= 3:
        message = message.replace(str(password), "***")
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "..."
    return message
