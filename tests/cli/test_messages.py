"""What `trackpipe query` shows of a server error: the server's message, not the client's noise."""

from __future__ import annotations

from trackpipe.cli import _query_failed, server_message

# as chDB through clickhouse-connect raised them (see the FORMAT Native it appends)
SYNTAX = (
    "Code: 62. DB::Exception: Syntax error: failed at position 7 (1) (line 1, col 7): 1\n FORMAT Native. "
    "Expected one of: token sequence, Dot, token, OR, AND, IS NOT DISTINCT FROM, IS DISTINCT FROM, IS NULL, "
    "BETWEEN, LIKE, end of query. (SYNTAX_ERROR)"
)
READONLY = (
    "Code: 164. DB::Exception: Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. "
    "(READONLY) (version 26.9.2.1). (READONLY)"
)
UNKNOWN = (
    "Code: 60. DB::Exception: Unknown table expression identifier 'nowhere'. "
    "In scope SELECT nope FROM nowhere SETTINGS readonly = '2'. (UNKNOWN_TABLE)"
)
HTTP = (
    "HTTPDriver for http://localhost:8123 received ClickHouse error code 60\n Code: 60. DB::Exception: "
    "Unknown table expression identifier 'x'. (UNKNOWN_TABLE) (version 24.3.1.1)"
)


def test_format_native_and_token_list_are_gone() -> None:
    text = server_message(SYNTAX)
    assert "FORMAT" not in text and "DB::Exception" not in text
    assert text.startswith("Syntax error: failed at position 7")
    assert "Expected one of: token sequence, Dot, token, OR, AND, IS NOT DISTINCT FROM, ..." in text
    assert text.endswith("(SYNTAX_ERROR)")


def test_repeated_prefix_and_version_are_gone() -> None:
    assert server_message(READONLY) == "Cannot modify 'readonly' setting in readonly mode. (READONLY)"


def test_plain_message_is_kept() -> None:
    assert server_message(UNKNOWN) == (
        "Unknown table expression identifier 'nowhere'. In scope SELECT nope FROM nowhere. (UNKNOWN_TABLE)"
    )


def test_http_driver_preamble_is_gone() -> None:
    assert server_message(HTTP) == "Unknown table expression identifier 'x'. (UNKNOWN_TABLE)"


def test_error_names_the_statement_on_one_line() -> None:
    error = _query_failed("SELEC 1\n  FROM t", SYNTAX)
    lines = str(error).splitlines()
    assert lines[0].startswith("query failed: Syntax error")
    assert lines[1] == "  statement: SELEC 1 FROM t"
