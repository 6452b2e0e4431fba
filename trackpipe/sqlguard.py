"""What `trackpipe query` lets through without --write, and how it shows a store's SQL error.

Pure functions on SQL text: a ClickHouse tokenizer (comments, literals and quoted identifiers
handled, so a keyword inside them is not read as one), statement splitting, the read-only
classifier `read_only_problem`, and `server_message`, which strips what the client stacked
around the server's own message.  The store enforces read-only mode as well (`READONLY_LEVEL`):
this module only gives the clear refusal before anything is sent.
"""

from __future__ import annotations

import itertools
import re
from typing import NamedTuple

#: the first words of statements that only read (a leading "(" is skipped)
READ_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
#: statements that change the store (named in the refusal; anything not in READ_STATEMENTS is refused)
WRITE_STATEMENTS = frozenset(
    {
        "ALTER", "ATTACH", "BACKUP", "CREATE", "DELETE", "DETACH", "DROP", "EXCHANGE", "GRANT", "INSERT",
        "KILL", "MOVE", "OPTIMIZE", "RENAME", "REPLACE", "RESTORE", "REVOKE", "SET", "SYSTEM", "TRUNCATE",
        "UNDROP", "UPDATE", "USE",
    }
)  # fmt: skip
#: ClickHouse's setting for the read-only statements: 2 refuses every write and DDL, and a change
#: of `readonly` itself, yet lets a query carry its own SETTINGS (max_threads ...); 1 would not
READONLY_LEVEL = 2
#: the clause read-only mode appends where the settings travel in the text (the pipeline's endpoint)
READONLY_CLAUSE = f"\n SETTINGS readonly = {READONLY_LEVEL}"
#: how much of a failed statement an error message quotes
STATEMENT_SHOWN = 300

_WORD = re.compile(r"[A-Za-z0-9_$]+")


class Token(NamedTuple):
    kind: str  # word | string | ident | punct
    text: str
    start: int  # offset in the statement text


def sql_tokens(sql: str) -> list[Token]:
    """ClickHouse SQL as tokens: comments (`--`, `#`, nested `/* */`) and whitespace dropped,
    string literals ('...' with backslash or doubled-quote escapes) and quoted identifiers
    ("...", `...`) kept whole, so a keyword inside them is not read as one."""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or c == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                elif sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:  # doubled quote: an escaped quote
                        j += 2
                    else:
                        break
                else:
                    j += 1
            out.append(Token("string" if c == "'" else "ident", sql[i : j + 1], i))
            i = j + 1
        elif match := _WORD.match(sql, i):
            out.append(Token("word", match.group(), i))
            i = match.end()
        else:
            out.append(Token("punct", c, i))
            i += 1
    return out


def split_statements(sql: str) -> list[str]:
    """The statements of `sql` (split on `;` outside literals and comments), without the `;`,
    leaving out the ones that hold nothing but comments."""
    statements, begin, tokens_seen = [], 0, False
    for token in sql_tokens(sql):
        if token.kind == "punct" and token.text == ";":
            if tokens_seen:
                statements.append(sql[begin : token.start].strip())
            begin, tokens_seen = token.start + 1, False
        else:
            tokens_seen = True
    if tokens_seen:
        statements.append(sql[begin:].strip())
    return statements


def read_only_problem(sql: str) -> str | None:
    """Why `sql` may not run without --write (None: it only reads)."""
    statements = split_statements(sql)
    if not statements:
        return "the query holds no statement"
    if len(statements) > 1:
        return f"one statement at a time ({len(statements)} given, separated by ';'); more need --write"
    tokens = sql_tokens(statements[0])
    while tokens and tokens[0].kind == "punct" and tokens[0].text == "(":  # (SELECT ...) UNION ...
        tokens = tokens[1:]
    first = tokens[0].text.upper() if tokens and tokens[0].kind == "word" else tokens[0].text if tokens else ""
    if first not in READ_STATEMENTS:
        if first in WRITE_STATEMENTS:
            return f"{first} changes the store: `trackpipe query` is read-only unless --write is given"
        return (
            f"{first!r} does not start a read-only statement ({', '.join(sorted(READ_STATEMENTS))}); "
            "writes and DDL need --write"
        )
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    if first == "WITH":
        depth, verb = 0, None
        for t in tokens[1:]:
            if t.kind == "punct" and t.text in "()":
                depth += 1 if t.text == "(" else -1
            elif depth <= 0 and t.kind == "word" and t.text.upper() in READ_STATEMENTS | WRITE_STATEMENTS:
                verb = t.text.upper()
                break
        if verb != "SELECT":
            return f"WITH ... {verb or '(no SELECT)'}: only WITH ... SELECT runs without --write"
    for a, b in itertools.pairwise(words):
        if (a, b) == ("INTO", "OUTFILE"):
            return "INTO OUTFILE writes a file: `trackpipe query` is read-only unless --write is given"
    return None


def select_statement(sql: str) -> str | None:
    """The one statement of `sql` when it is a SELECT or WITH ... (one whose result columns
    `DESCRIBE (query)` can tell); None otherwise."""
    statements = split_statements(sql)
    tokens = sql_tokens(statements[0]) if len(statements) == 1 else []
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    if not words or words[0] not in ("SELECT", "WITH"):
        return None
    return statements[0]


_NOISE = (
    re.compile(r"\s*\bFORMAT (Native|JSON|TabSeparated\w*)\b"),  # what clickhouse-connect appends
    re.compile(r"\s*\bSETTINGS readonly = '?\d'?"),  # what read-only mode appends
    re.compile(r"\s*\(version [\d.]+\)"),
)
_EXCEPTION_PREFIX = re.compile(r"Code: \d+\. DB::Exception: ")
_REPEATED_NAME = re.compile(r"(\([A-Z_]+\))(\.? \1)+")  # "(READONLY). (READONLY)" of a wrapped error
_EXPECTED = re.compile(r"(Expected one of: )([^.]*?)(\. \(|\.?$)")


def server_message(error: str) -> str:
    """The server's message without what the client stacked around it: the `FORMAT Native`
    clickhouse-connect appends (and the read-only SETTINGS), repeated `Code: N. DB::Exception:`
    prefixes, the server version, an `Expected one of:` list of dozens of tokens."""
    text = error
    at = text.find("Code: ")
    if at > 0:  # "HTTPDriver for http://... received ClickHouse error code 60 ..." before it
        text = text[at:]
    for noise in _NOISE:
        text = noise.sub("", text)
    text = _EXCEPTION_PREFIX.sub("", text)
    text = _REPEATED_NAME.sub(r"\1", " ".join(text.split()))

    def shorten(m: re.Match[str]) -> str:
        items = [s.strip() for s in m.group(2).split(",")]
        shown = ", ".join(items[:6]) + (", ..." if len(items) > 6 else "")
        return m.group(1) + shown + m.group(3)

    return _EXPECTED.sub(shorten, text)


def failure_message(sql: str, error: str) -> str:
    """What `trackpipe query` prints when the store refused `sql`: the server's message and
    the statement on one line (cut to STATEMENT_SHOWN characters)."""
    statement = " ".join(sql.split())
    if len(statement) > STATEMENT_SHOWN:
        statement = statement[: STATEMENT_SHOWN - 3] + "..."
    return f"query failed: {server_message(error)}\n  statement: {statement}"
