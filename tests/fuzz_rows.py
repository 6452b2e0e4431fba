"""The worker's steps after decode, for the fuzz (`tests/test_fuzz.py`, `tests/fuzz_run.py`).

One raw record goes through what `streams.app.decode` does with it, with no Kafka and no
database: `streams.process.process`; the Avro encode, and decode back, of every position,
event and dead letter it yields; `store.rows_to_columns` and the native INSERT block
clickhouse-connect would send for each table (built offline from the column types of
`trackpipe/sql/schema.sql`: the same serializer `client.insert` runs before sending).
Dead letters are stored as the sink stores them: read back from their Avro first.

A *finding* is what would stop or wedge the worker: an exception escaping `process`, an
Avro encode/decode failure on a row it produced, a `rows_to_columns` failure, or an INSERT
serialization error the worker would not see as the rows' fault (`store.is_rejection`
false: it would retry the same rows forever).  A block the store refuses
(`is_rejection` true) is a documented outcome: the rows at fault become dead letters
(stage "store"), and those dead letters are checked like the others; refused rows are counted.

`mutate_record` makes the odd values a decoder bug could produce (NaN/inf, huge ints,
naive datetimes, lone surrogates, very long strings, attributes of other types) from a
real decoded record; `Replay` hands such records to `process` in place of a decoder.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import random
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.transform import NativeTransform
from trackpipe.protocols import registry
from trackpipe.protocols.base import Context, Decoded, Record
from trackpipe.streams.process import deadletter, process

from trackpipe import schemas, store

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)
DEVICE = "123456789012345"
REPLAY = "fuzzreplay"  # the name `Replay` is registered under while in use

_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\((.*?)\n\)", re.S)


@cache
def column_types(table: str) -> tuple[ClickHouseType, ...]:
    """The ClickHouse types of `store.COLUMNS[table]`, read from schema.sql."""
    text = resources.files("trackpipe").joinpath("sql/schema.sql").read_text(encoding="utf-8")
    for name, body in _TABLE.findall(text):
        if name != table:
            continue
        declared = {}
        for line in body.splitlines():
            line = line.split("--", 1)[0].strip().rstrip(",")
            if line:
                column, kind = line.split(None, 1)
                declared[column] = kind
        return tuple(get_from_name(declared[column]) for column in store.COLUMNS[table])
    raise KeyError(f"schema.sql has no table {table!r}")


def native_block(table: str, rows: list[dict[str, Any]]) -> bytes:
    """The Native-format INSERT body clickhouse-connect sends for `store.insert(client, table, rows)`."""
    context = InsertContext(
        table, list(store.COLUMNS[table]), list(column_types(table)), store.rows_to_columns(table, rows), True
    )
    transform_log = logging.getLogger("clickhouse_connect.driver.transform")
    level = transform_log.level
    transform_log.setLevel(logging.CRITICAL)  # it logs every refused column with a traceback
    try:
        body = b"".join(NativeTransform().build_insert(context))
    finally:
        transform_log.setLevel(level)
    if context.insert_exception is not None:  # what the client raises once the server refuses the garbled body
        raise context.insert_exception
    return body


def raw_record(protocol: str, frame: bytes, transport: str, device_id: str | None = DEVICE) -> dict[str, Any]:
    """A `tracker.raw` record as the edge publishes it (read back from its own Avro)."""
    raw = {
        "frame": frame,
        "protocol": protocol,
        "kind": "other",
        "device_id": device_id,
        "transport": transport,
        "peer_host": "127.0.0.1",
        "peer_port": 40000,
        "local_port": 5023,
        "connection_id": "c-1",
        "edge_id": "edge-1",
        "received_at": RECEIVED,
        "seq": 1,
    }
    return schemas.decode("raw", schemas.encode("raw", raw))


def lookup(device_id: str) -> Mapping[str, Any] | None:
    """The registry: the context's device is registered, every other one is not."""
    return {"name": "fuzz car", "account": "acme", "options": {}} if device_id == DEVICE else None


#: (stage, error, tag): the tag names the input (e.g. "gt06 #17")
Finding = tuple[str, BaseException, str]


class Mismatch(Exception):
    """The compiled Avro codec and fastavro disagree on a row (the module promises the same bytes)."""


def _fastavro(kind: str, row: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schemas.schema(kind), row)
    return buf.getvalue()


@dataclass(slots=True)
class WorkerSteps:
    """`feed` raw records as the worker takes a batch; `flush` stores it (offline).  Findings
    gather in `findings`; `rows` counts what `process` produced, `refused` the rows the store
    would refuse (each one a dead letter of stage "store", itself checked)."""

    findings: list[Finding] = field(default_factory=list)
    inputs: int = 0
    rows: int = 0
    refused: int = 0
    pending: dict[str, list[tuple[dict[str, Any], Mapping[str, Any], str]]] = field(
        default_factory=lambda: {table: [] for table in store.COLUMNS}
    )

    def feed(self, raw: Mapping[str, Any], tag: str) -> None:
        self.inputs += 1
        try:
            out = process(raw, lookup)
        except Exception as exc:
            self.findings.append(("process", exc, tag))
            return
        self.rows += len(out.positions) + len(out.events) + len(out.deadletters) + (out.status is not None)
        for kind, rows in (("positions", out.positions), ("events", out.events)):
            for row in rows:
                self._avro(kind, row, tag)
                self.pending[kind].append((row, raw, tag))
        if out.status is not None:  # stored only, never published
            self.pending["device_status"].append((out.status, raw, tag))
        for row in out.deadletters:  # the sink stores dead letters as read back from the topic
            back = self._avro("deadletter", row, tag)
            if back is not None:
                self.pending["deadletter"].append((back, raw, tag))

    def flush(self) -> None:
        """One INSERT block per table, as the worker's batch; a refused block row by row."""
        for table, entries in self.pending.items():
            rows = [row for row, _, _ in entries]
            try:
                native_block(table, rows)
                continue
            except Exception as exc:
                if not store.is_rejection(exc):
                    self.findings.append((f"insert:{table}", exc, "batch"))
                    continue
            for row, raw, tag in entries:  # as store.insert_or_split ends up: each row at fault alone
                try:
                    native_block(table, [row])
                except Exception as exc:
                    if not store.is_rejection(exc):  # the worker would retry these rows forever
                        self.findings.append((f"insert:{table}", exc, tag))
                        continue
                    self.refused += 1
                    detail = f"{table}: {store.describe(exc)}"
                    self._avro(
                        "deadletter", deadletter(raw, "refused by store", detail, row.get("device_id"), "store"), tag
                    )
        self.pending = {table: [] for table in store.COLUMNS}

    def _avro(self, kind: str, row: dict[str, Any], tag: str) -> dict[str, Any] | None:
        """`row` encoded and read back, as a consumer would; checked against fastavro's bytes."""
        try:
            data = schemas.encode(kind, row)
            back = schemas.decode(kind, data)
        except Exception as exc:
            self.findings.append((f"avro:{kind}", exc, tag))
            return None
        try:
            reference = _fastavro(kind, row)
        except Exception as exc:
            wrong = Mismatch(f"fastavro refuses what schemas.encode wrote: {type(exc).__name__}: {exc}")
            self.findings.append((f"avro:{kind}", wrong.with_traceback(exc.__traceback__), tag))
            return back
        if reference != data:
            wrong = Mismatch(f"bytes differ from fastavro's ({len(data)} vs {len(reference)})")
            self.findings.append((f"avro:{kind}", wrong, tag))
        return back


# -- records with the values a decoder bug could produce --------------------------------


class Replay:
    """Stands in for a decoder in `process`: returns the `Decoded` it is given."""

    name = REPLAY
    decoded = Decoded("other")

    def decode(self, data: bytes, ctx: Context) -> Decoded:
        return self.decoded


@contextmanager
def replaying() -> Iterator[Replay]:
    """`Replay` registered (as `REPLAY`) for the block; removed after."""
    replay = Replay()
    registry.BY_NAME[REPLAY] = replay  # type: ignore[assignment]
    try:
        yield replay
    finally:
        del registry.BY_NAME[REPLAY]


def decoded_seeds(codec: Any, seeds: list[bytes]) -> list[Decoded]:
    """What `codec` decodes from `seeds` with records in it (frames it refuses are skipped)."""
    found = []
    for data in seeds:
        for transport in sorted(codec.transports):
            try:
                decoded = codec.decode(data, Context(transport, DEVICE, RECEIVED, {}))
            except Exception:
                continue
            if decoded.records:
                found.append(decoded)
    return found


def frames(
    codec: Any, seeds: list[bytes], mutate: Any, rng: random.Random, inputs: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(tag, raw record): every seed as captured, then `inputs` random or mutated frames."""
    for n, data in enumerate([*seeds, *(_frame(seeds, mutate, rng, n) for n in range(inputs))]):
        for transport in sorted(codec.transports):
            device = DEVICE if rng.random() < 0.8 else None
            yield f"{codec.name} #{n} {transport} {data[:48]!r}", raw_record(codec.name, data, transport, device)


def _frame(seeds: list[bytes], mutate: Any, rng: random.Random, n: int) -> bytes:
    return rng.randbytes(rng.randint(0, 200)) if n % 5 == 0 else mutate(rng, rng.choice(seeds))


def odd_records(
    codec: Any, decoded: list[Decoded], replay: Replay, rng: random.Random, inputs: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(tag, raw record) whose decode, through `replay`, is a real decoded frame with odd values."""
    for n in range(inputs):
        replay.decoded, notes = mutate_decoded(rng, rng.choice(decoded))
        yield f"{codec.name} #{n}: {', '.join(notes) or 'unchanged'}", raw_record(REPLAY, b"replayed", "tcp")


_FLOATS: tuple[Any, ...] = (
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    -1e308,
    5e-324,
    -0.0,
    2**64,
    10**400,  # an int no double holds
    True,
)
_INTS: tuple[Any, ...] = (-1, 0, 2**15, 2**16, 2**31, 2**63, 2**64, 10**30, 7.5, float("nan"), True)
_TIMES: tuple[Any, ...] = (
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    RECEIVED.replace(microsecond=999999),
    datetime(2026, 1, 1),  # naive: the contract says aware UTC
)
_STRINGS: tuple[str, ...] = ("", "\x00", "\udcff", "\ud800x", "é" * 3, "x" * 100_000, "a,b;c\r\n", "\U0010ffff")
_ODD: tuple[Any, ...] = (*_STRINGS, 1, -(2**70), 1.5, float("nan"), None, True, b"\xff\x00", [1, "a"], {"k": "v"})
_FLOAT_FIELDS = (
    "latitude",
    "longitude",
    "altitude",
    "speed",
    "course",
    "battery_level",
    "battery",
    "power",
    "odometer",
)
_FLAGS = ("valid", "archive", "ignition")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


def mutate_record(rng: random.Random, rec: Record) -> tuple[Record, list[str]]:
    """A copy of `rec` with one to three fields set to odd values, and what was set."""
    changes: dict[str, Any] = {}
    attributes = dict(rec.attributes)
    alarms = list(rec.alarms)
    notes = []
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(8)
        if op == 0:
            changes[rng.choice(_FLOAT_FIELDS)] = rng.choice(_FLOATS)
        elif op == 1:
            changes["satellites"] = rng.choice(_INTS)
        elif op == 2:
            changes["fix_time"] = rng.choice(_TIMES)
        elif op == 3:
            changes["device_id"] = rng.choice(_STRINGS)
        elif op == 4:
            alarms.append(rng.choice(_STRINGS))
            notes.append(f"alarms+={_short(alarms[-1])}")
        elif op == 5:
            changes[rng.choice(_FLAGS)] = rng.choice((None, 0, 1, 2, "yes", 1.0))
        elif op == 6:  # an attribute of an odd type (or an odd key)
            key = rng.choice((*_STRINGS, 7)) if rng.random() < 0.3 else rng.choice([*attributes, "event", "x"])
            attributes[key] = rng.choice(_ODD)
            notes.append(f"attributes[{_short(key)}]={_short(attributes[key])}")
        else:  # a position on the edge of the valid range
            changes["latitude"] = rng.choice((90.0, -90.0, 90.0000001, 0.0))
            changes["longitude"] = rng.choice((180.0, -180.0, -180.0000001, 0.0))
    notes += [f"{name}={_short(value)}" for name, value in changes.items()]
    return dataclasses.replace(rec, attributes=attributes, alarms=alarms, **changes), notes


def mutate_decoded(rng: random.Random, decoded: Decoded) -> tuple[Decoded, list[str]]:
    """`decoded` with most of its records mutated (and now and then its device id)."""
    records, notes = [], []
    for rec in decoded.records:
        if rng.random() < 0.7:
            rec, changed = mutate_record(rng, rec)
            notes += changed
        records.append(rec)
    device = decoded.device_id
    if rng.random() < 0.1:
        device = rng.choice(_STRINGS)
        notes.append(f"frame device_id={_short(device)}")
    return Decoded(decoded.kind, device, records), notes


def where(stage: str, exc: BaseException) -> tuple[str, str, str, int]:
    """A finding's identity: stage, error type, and the innermost project line it came from."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/site-packages/" not in f.filename] or frames
    if not ours:
        return stage, type(exc).__name__, "?", 0
    where = ours[-1]
    return stage, type(exc).__name__, "/".join(where.filename.rsplit("/", 2)[-2:]), where.lineno or 0


def report(findings: list[Finding]) -> str:
    """One line per distinct finding (stage, error, innermost project line), with a first input."""
    seen: dict[tuple[str, str, str, int], str] = {}
    for stage, exc, tag in findings:
        seen.setdefault(where(stage, exc), f"{exc!s:.200} -- {tag:.300}")
    return "\n".join(f"{' '.join(map(str, key))}: {what}" for key, what in seen.items())
