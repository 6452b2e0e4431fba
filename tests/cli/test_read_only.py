"""The read-only classifier of `trackpipe query` (what runs without --write)."""

from __future__ import annotations

import pytest

from trackpipe.cli import read_only_problem, split_statements, sql_tokens

READS = [
    "SELECT 1",
    "select device_id from positions",
    "  \n\tSELECT 1",
    "-- latest first\nSELECT * FROM latest_positions",
    "# hash comment\nSELECT 1",
    "/* a /* nested */ comment */ SELECT 1",
    "WITH 5 AS n SELECT n",
    "with recent AS (SELECT device_id FROM positions WHERE fix_time > now() - 60) SELECT count() FROM recent",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SHOW TABLES",
    "DESCRIBE TABLE positions",
    "desc positions",
    "EXPLAIN SELECT 1",
    "EXISTS TABLE positions",
    "SELECT 1;",
    "SELECT 1; -- trailing comment only",
    "SELECT 'DROP TABLE positions; INSERT' AS text",
    "SELECT 'it''s; DROP' AS x",
    "SELECT 'back\\'slash; DROP' AS x",
    'SELECT "DELETE" FROM positions',
    "SELECT `drop;table` FROM positions",
    "SELECT max(speed) FROM positions SETTINGS max_threads = 1",
]

WRITES = [
    ("INSERT INTO positions SELECT * FROM positions", "INSERT"),
    ("insert into events values (1)", "INSERT"),
    ("ALTER TABLE positions DELETE WHERE 1", "ALTER"),
    ("DROP TABLE positions", "DROP"),
    ("CREATE TABLE t (a Int8) ENGINE = Memory", "CREATE"),
    ("TRUNCATE TABLE positions", "TRUNCATE"),
    ("DELETE FROM positions WHERE 1", "DELETE"),
    ("OPTIMIZE TABLE positions FINAL", "OPTIMIZE"),
    ("RENAME TABLE positions TO p2", "RENAME"),
    ("SYSTEM STOP MERGES", "SYSTEM"),
    ("KILL QUERY WHERE 1", "KILL"),
    ("GRANT ALL ON *.* TO bob", "GRANT"),
    ("SET readonly = 0", "SET"),
    ("  -- looks harmless\n  /* but */ drop table positions", "DROP"),
    ("(INSERT INTO t VALUES (1))", "INSERT"),
    ("SELECT 1; DROP TABLE positions", "one statement"),
    ("SELECT 1 ; ; INSERT INTO t VALUES (1)", "one statement"),
    ("WITH 1 AS x INSERT INTO t SELECT x", "WITH ... INSERT"),
    ("WITH 1 AS x", "no SELECT"),
    ("SELECT 1 INTO OUTFILE '/tmp/x.tsv'", "INTO OUTFILE"),
    ("SELEC 1", "does not start a read-only statement"),
    ("", "no statement"),
    ("  -- only a comment", "no statement"),
    (";", "no statement"),
]


@pytest.mark.parametrize("sql", READS)
def test_reads_run_without_write(sql: str) -> None:
    assert read_only_problem(sql) is None


@pytest.mark.parametrize(("sql", "named"), WRITES)
def test_writes_are_refused_with_a_reason(sql: str, named: str) -> None:
    problem = read_only_problem(sql)
    assert problem is not None and named in problem, problem


def test_refusal_says_how_to_run_it() -> None:
    problem = read_only_problem("DROP TABLE positions")
    assert problem is not None and "--write" in problem


def test_tokens_keep_literals_and_drop_comments() -> None:
    tokens = sql_tokens("SELECT 'a;b' -- c;d\n, \"x\" /* ; */ ;")
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "SELECT"),
        ("string", "'a;b'"),
        ("punct", ","),
        ("ident", '"x"'),
        ("punct", ";"),
    ]


def test_unterminated_literal_does_not_hang_or_crash() -> None:
    assert split_statements("SELECT 'open; DROP TABLE x") == ["SELECT 'open; DROP TABLE x"]
    assert read_only_problem("SELECT /* open; DROP") is None  # the server reports the syntax error


def test_split_statements_strips_the_semicolon() -> None:
    assert split_statements("  SELECT 1 ;  -- done\n") == ["SELECT 1"]
    assert split_statements("SELECT 1; SELECT 2") == ["SELECT 1", "SELECT 2"]
