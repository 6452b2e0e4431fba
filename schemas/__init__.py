"""Avro schemas of every trackpipe topic, and the fastavro codec for them.

Values are schemaless Avro (the `.avsc` file beside this module is the contract;
a consumer in any language decodes a topic with the matching file).
"""

from __future__ import annotations

import io
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
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema(kind), record)
    return buf.getvalue()


def decode(kind: str, data: bytes) -> dict[str, Any]:
    return fastavro.schemaless_reader(io.BytesIO(data), schema(kind), None)
