"""The journal's multi-row INSERTs come in a few sizes, so SQLite keeps them prepared."""

import sqlite3

import pytest

from conv3n.storage.statements import ROWS_PER_STATEMENT, Statement, row_counts


@pytest.mark.parametrize("total", [0, 1, 2, 3, 37, 511, 512, 513, 1500, 10_000])
def test_row_counts_cover_every_row_in_power_of_two_sizes(total: int):
    counts = row_counts(total)
    assert sum(counts) == total
    assert all(c & (c - 1) == 0 and 0 < c <= ROWS_PER_STATEMENT for c in counts)
    assert counts == sorted(counts, reverse=True)


def test_every_batch_size_up_to_a_large_one_uses_ten_statement_sizes():
    sizes = {count for total in range(1, 5_000) for count in row_counts(total)}
    assert len(sizes) == 10  # 1, 2, 4, ..., 512


def test_the_rows_text_is_one_insert_with_that_many_value_groups():
    statement = Statement(
        "INSERT INTO t (a, b) VALUES (?, ?)",
        ("a", "b"),
        positional=True,
        rows_sql=("INSERT INTO t (a, b) VALUES ", "(?, ?)", ""),
    )
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (a, b)")
        db.execute(statement.rows_text(4), tuple(range(8)))
        assert db.execute("SELECT a, b FROM t").fetchall() == [(0, 1), (2, 3), (4, 5), (6, 7)]
    assert statement.rows_text(4) is statement.rows_text(4)


def test_a_statement_without_value_groups_has_no_rows_text():
    statement = Statement("UPDATE t SET a = ?", ("a",), positional=True)
    with pytest.raises(TypeError):
        statement.rows_text(2)
