"""Avro schemas of every trackpipe topic, and the codec for them.

Values are schemaless Avro (the `.avsc` file beside this module is the contract;
a consumer in any language decodes a topic with the matching file).

`encode` runs a writer compiled once per schema from its fields (one small writer per
field, bound in a list): measured ~1.4x faster than fastavro's generic schemaless writer
on these records (the worker encodes every published position and event).  It covers
the types the schemas use (null, boolean, int, long, double, float, string, bytes,
timestamp-millis, arrays, maps, unions); a schema using anything else is written by
fastavro instead.  Its bytes are fastavro's (tests/streams/test_schemas_codec.py).
`decode` is fastavro's schemaless reader with the parsed schema cached (faster here than
a reader compiled the same way).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import orjson

HERE = Path(__file__).resolve().parent

#: topic suffix -> schema file
SCHEMA_FILES = {
    "raw": "raw_frame.avsc",
    "positions": "position.avsc",
    "events": "event.avsc",
    "deadletter": "deadletter.avsc",
    "devices": "device.avsc",
}


@cache
def schema(kind: str) -> Any:
    return fastavro.parse_schema(orjson.loads((HERE / SCHEMA_FILES[kind]).read_text()))


def encode(kind: str, record: dict[str, Any]) -> bytes:
    return _encoder(kind)(record)


#: topic suffix -> schema files of earlier versions, newest first (records are schemaless: a
#: record written by one of them is read with its writer's schema, resolved to the current)
OLDER_SCHEMA_FILES = {"devices": ("device.v1.avsc",), "events": ("event.v1.avsc",)}


@cache
def older_schemas(kind: str) -> tuple[Any, ...]:
    return tuple(fastavro.parse_schema(orjson.loads((HERE / f).read_text())) for f in OLDER_SCHEMA_FILES.get(kind, ()))


def decode(kind: str, data: bytes) -> dict[str, Any]:
    """One record of topic `kind`, whichever of its schema versions wrote it."""
    if kind not in OLDER_SCHEMA_FILES:
        return fastavro.schemaless_reader(io.BytesIO(data), schema(kind), None)
    buf = io.BytesIO(data)
    try:
        record = fastavro.schemaless_reader(buf, schema(kind), None)
        if buf.tell() == len(data):
            return record
    except (EOFError, ValueError, IndexError):
        pass
    for writer in older_schemas(kind):
        buf = io.BytesIO(data)
        try:
            record = fastavro.schemaless_reader(buf, writer, schema(kind))
        except (EOFError, ValueError, IndexError):
            continue
        if buf.tell() == len(data):
            return record
    raise ValueError(f"{kind}: a record no version of its schema reads ({len(data)} bytes)")


# -- the compiled writer -----------------------------------------------------------------

Writer = Callable[[bytearray, Any], None]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_SMALL = [bytes([n]) for n in range(128)]  # one-byte varints


class Unsupported(Exception):
    """A schema construct the compiled codec does not cover (fastavro handles it)."""


@cache
def _encoder(kind: str) -> Callable[[dict[str, Any]], bytes]:
    parsed = schema(kind)
    try:
        write = _writer(parsed)
    except Unsupported:
        return lambda record: _fastavro_encode(parsed, record)

    def encode(record: dict[str, Any]) -> bytes:
        out = bytearray()
        write(out, record)
        return bytes(out)

    return encode


def _fastavro_encode(parsed: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, record)
    return buf.getvalue()


def _varint(n: int) -> bytes:
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _write_long(out: bytearray, n: int) -> None:
    out += _varint(n << 1 if n >= 0 else ((-n) << 1) - 1)  # zigzag


def _write_string(out: bytearray, value: str) -> None:
    raw = value.encode()
    out += _varint(len(raw) << 1)
    out += raw


def _write_bytes(out: bytearray, value: bytes) -> None:
    out += _varint(len(value) << 1)
    out += value


def _write_boolean(out: bytearray, value: bool) -> None:
    out += b"\x01" if value else b"\x00"


def _write_double(out: bytearray, value: float) -> None:
    out += _DOUBLE.pack(value)


def _write_float(out: bytearray, value: float) -> None:
    out += _FLOAT.pack(value)


def _write_null(out: bytearray, value: None) -> None:
    if value is not None:
        raise ValueError(f"{value!r} is not null")


def _write_millis(out: bytearray, value: datetime | int) -> None:
    if isinstance(value, datetime):  # as fastavro: a naive datetime is UTC
        delta = value - (EPOCH if value.tzinfo is not None else _EPOCH_NAIVE)
        value = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    _write_long(out, value)


_PRIMITIVES: dict[str, Writer] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_long,
    "long": _write_long,
    "double": _write_double,
    "float": _write_float,
    "string": _write_string,
    "bytes": _write_bytes,
}


def _type_name(avro_type: Any) -> str:
    if isinstance(avro_type, str):
        return avro_type
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis" and avro_type.get("type") == "long":
            return "timestamp-millis"
        if "logicalType" in avro_type:
            raise Unsupported(avro_type["logicalType"])
        return str(avro_type["type"])
    if isinstance(avro_type, list):
        return "union"
    raise Unsupported(repr(avro_type))


def _writer(avro_type: Any) -> Writer:
    name = _type_name(avro_type)
    if name in _PRIMITIVES:
        return _PRIMITIVES[name]
    if name == "timestamp-millis":
        return _write_millis
    if name == "record":
        return _record_writer(avro_type["fields"])
    if name == "array":
        return _block_writer(_writer(avro_type["items"]), pairs=False)
    if name == "map":
        return _block_writer(_writer(avro_type["values"]), pairs=True)
    if name == "union":
        return _union_writer(avro_type)
    raise Unsupported(name)


_MISSING = object()


def _record_writer(fields: list[dict[str, Any]]) -> Writer:
    plan = [(f["name"], f.get("default", _MISSING), _writer(f["type"])) for f in fields]

    def write(out: bytearray, record: dict[str, Any]) -> None:
        get = record.get
        for name, default, write_field in plan:
            value = get(name, default)
            if value is _MISSING:
                raise ValueError(f"no value for field {name!r} (and no default)")
            write_field(out, value)

    return write


def _block_writer(write_item: Writer, *, pairs: bool) -> Writer:
    """Arrays and maps: one block holding every item, then the empty block."""

    def write(out: bytearray, value: Any) -> None:
        if value:
            _write_long(out, len(value))
            if pairs:
                for key, item in value.items():
                    _write_string(out, key)
                    write_item(out, item)
            else:
                for item in value:
                    write_item(out, item)
        out += b"\x00"

    return write


#: which Python values a union branch takes when writing (bool before int: bool is an int)
_BRANCH_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "double": (float, int),
    "float": (float, int),
    "string": (str,),
    "bytes": (bytes, bytearray),
    "timestamp-millis": (datetime, int),
    "array": (list, tuple),
    "map": (dict,),
    "record": (dict,),
}


def _union_writer(branches: list[Any]) -> Writer:
    choices = []
    null_tag: bytes | None = None
    for index, branch in enumerate(branches):
        name = _type_name(branch)
        if name == "null":
            null_tag = _varint(index << 1)
            continue
        if name not in _BRANCH_TYPES:
            raise Unsupported(f"union of {name}")
        choices.append((_BRANCH_TYPES[name], name == "boolean", _varint(index << 1), _writer(branch)))

    def write(out: bytearray, value: Any) -> None:
        if value is None:
            if null_tag is None:
                raise ValueError("None for a union without null")
            out += null_tag
            return
        for types, is_boolean, tag, write_branch in choices:
            if isinstance(value, types) and (is_boolean or not isinstance(value, bool) or len(choices) == 1):
                out += tag
                write_branch(out, value)
                return
        raise ValueError(f"{value!r} matches no branch of union {branches!r}")

    return write
