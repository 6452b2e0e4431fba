"""Access to the shared corpus of real device captures (../shared/vectors).

Tests that read it skip with a clear message when the folder is absent (as on a
user's machine that cloned the project alone).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("TRACKPIPE_VECTORS", ROOT.parent / "shared" / "vectors"))
SAMPLES = VECTORS / "traccar-samples.jsonl"


@functools.cache
def _all() -> tuple[dict[str, Any], ...]:
    with SAMPLES.open(encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def available() -> bool:
    return SAMPLES.exists()


def require() -> None:
    if not available():
        pytest.skip(f"shared device corpus not found at {SAMPLES} (set TRACKPIPE_VECTORS)")


def samples(protocol: str | None = None) -> list[dict[str, Any]]:
    """All corpus records (of one protocol when given); [] when the corpus is absent."""
    if not available():
        return []
    return [r for r in _all() if protocol is None or r["protocol"] == protocol]


def payload(record: dict[str, Any]) -> bytes:
    """The bytes a device sent, whatever the record's encoding."""
    if "parts" in record:
        return b"".join(payload(p) for p in record["parts"])
    if record.get("data_hex"):
        return bytes.fromhex(record["data_hex"])
    if record["encoding"] == "hex":
        return bytes.fromhex(record["data"])
    return _text(record["data"])


def _text(data: str) -> bytes:
    """Text samples are byte strings in Java; a few hold characters beyond latin-1 (UTF-8 on the wire)."""
    try:
        return data.encode("latin-1")
    except UnicodeEncodeError:
        return data.encode("utf-8")


def expected_frame(record: dict[str, Any]) -> bytes:
    exp = record["expected"]
    if exp.get("frame_encoding") == "hex":
        return bytes.fromhex(exp["frame"])
    return _text(exp["frame"])


def sample_id(record: dict[str, Any]) -> str:
    return f"{record['protocol']}-{record['test']}-{record['line']}-{record['seq']}"
