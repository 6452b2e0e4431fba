"""Poison data never blocks the stream (issue 6, item 3) and position quality (item 4), through
`trackpipe run` with its own data directory: one GT06 device whose clock spans 27 years (323
months, more than ClickHouse's 100 partitions per INSERT) and reports (0,0) and future fixes,
beside normal devices.  Counted: the normal devices' rows all stored, the device's impossible
fixes dead-lettered with the reason, and storing goes on afterwards -- also after a restart.
Run on a fresh store and on one whose `positions` table was made with the old monthly
partitions (an installation from before), where the worker must split the refused batch."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device as Gt06Device

from .conftest import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

POISON = "359000000099000"
NORMAL = [f"3590000000991{i:02d}" for i in range(5)]
POINTS = 40  # per normal device per round
MONTHS = 323  # 2000-01 .. 2026-11
ENV = {"TRACKPIPE_SINK_INTERVAL": "2"}  # the whole poison batch in one INSERT

_OLD_POSITIONS = """
import sys
from trackpipe.config import Settings
from trackpipe import store
from pathlib import Path
import clickhouse_connect
settings = Settings(data_dir=Path(sys.argv[1]))
settings.chdb_dir.mkdir(parents=True)
client = clickhouse_connect.get_client(dsn=f"chdb://{settings.chdb_dir.resolve()}")
db = store.database_of(settings)
client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
create = next(s for s in store.schema_statements(db) if "TABLE IF NOT EXISTS " + db + ".positions" in s)
client.command(create.replace("PARTITION BY toYear(fix_time)", "PARTITION BY toYYYYMM(fix_time)"))
client.close()
"""


def _send(p: Pipeline, device_id: str, fixes: list[Fix]) -> None:
    """Login, the positions, then a heartbeat whose reply says the edge got everything before it."""
    device = Gt06Device(device_id, "tcp")
    with socket.create_connection((p.host, p.port), timeout=20) as sock:
        sock.sendall(device.login()[0])
        assert sock.recv(64), "login must be acknowledged"
        sock.sendall(b"".join(device.position(f) for f in fixes))
        sock.sendall(device.heartbeat())
        assert sock.recv(64), "heartbeat must be acknowledged"


def _round(p: Pipeline, start: datetime, poison: bool) -> None:
    normal = [Fix(start + timedelta(seconds=5 * i), 50.0 + i / 1000, 19.0) for i in range(POINTS)]
    if poison:
        clock = [Fix(datetime(2000, 1, 15, tzinfo=UTC) + timedelta(days=30.44 * i), 40.0, 20.0) for i in range(MONTHS)]
        zero = [Fix(start + timedelta(seconds=i), 0.0, 0.0) for i in range(3)]
        future = [Fix(start + timedelta(days=400 + i), 40.0, 20.0) for i in range(4)]
        _send(p, POISON, clock + zero + future)
    for device_id in NORMAL:
        _send(p, device_id, normal)


def _count(p: Pipeline, sql: str, want: int) -> int:
    rows = p.wait_rows(sql, lambda r: r[0]["n"] >= want, timeout=60)
    return rows[0]["n"]


def _normal_rows(p: Pipeline, want: int) -> int:
    ids = ", ".join(f"'{d}'" for d in NORMAL)
    return _count(p, f"SELECT count() AS n FROM positions FINAL WHERE device_id IN ({ids})", want)


def _filtered(p: Pipeline, want: int) -> dict[str, int]:
    """Distinct dead letters by reason: a letter is stored at least once (a frame the edge's spool
    published again after the restart gives its letters again: same receive time and detail)."""
    letters = "uniqExact(time, detail)"
    sql = f"SELECT {letters} AS n FROM deadletter WHERE device_id = '{POISON}' AND stage = 'filter'"
    _count(p, sql, want)
    by_reason = f"SELECT reason, {letters} AS n FROM deadletter WHERE device_id = '{POISON}' GROUP BY reason"
    return {r["reason"]: r["n"] for r in p.query(by_reason)}


@pytest.mark.parametrize("store_made_by", ["this schema", "old monthly schema"])
def test_poison_device_does_not_block_others(tmp_path: Path, store_made_by: str) -> None:
    if store_made_by == "old monthly schema":
        subprocess.run([sys.executable, "-c", _OLD_POSITIONS, str(tmp_path)], check=True, timeout=120)
    p = start_pipeline(tmp_path, extra_env=ENV)
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        _round(p, start, poison=True)
        stored = _normal_rows(p, len(NORMAL) * POINTS)
        clock = _count(p, f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{POISON}'", MONTHS)
        reasons = _filtered(p, 7)
        print(
            f"\n[{store_made_by}] round 1: normal rows {stored}/{len(NORMAL) * POINTS}, "
            f"poison device positions {clock}/{MONTHS}, dead letters {reasons}"
        )
        assert stored == len(NORMAL) * POINTS
        assert clock == MONTHS  # 27 years of a device's clock are storable positions
        assert reasons == {"zero position": 3, "fix time in future": 4}
        # storing goes on
        _round(p, start + timedelta(minutes=10), poison=False)
        assert _normal_rows(p, 2 * len(NORMAL) * POINTS) == 2 * len(NORMAL) * POINTS
    finally:
        _took, code, alive = stop_pipeline(p)
        assert not alive and code == 0, (code, alive)
    # after a restart: the poison device resends everything, the others keep being stored
    p = start_pipeline(tmp_path, extra_env=ENV)
    try:
        _round(p, start + timedelta(minutes=20), poison=True)
        stored = _normal_rows(p, 3 * len(NORMAL) * POINTS)
        reasons = _filtered(p, 14)
        clock = p.query(f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{POISON}'")[0]["n"]
        print(
            f"[{store_made_by}] after restart: normal rows {stored}/{3 * len(NORMAL) * POINTS}, "
            f"poison positions {clock} (resent: collapsed), dead letters {reasons}"
        )
        assert stored == 3 * len(NORMAL) * POINTS
        assert clock == MONTHS  # the resent points collapsed
        assert reasons == {"zero position": 6, "fix time in future": 8}
    finally:
        _took, code, alive = stop_pipeline(p)
        assert not alive and code == 0, (code, alive)
    logs = "".join(f.read_text(errors="replace") for f in sorted((tmp_path / "logs").glob("worker*")))
    split = [line for line in logs.splitlines() if "refused blocks split" in line]
    print(f"[{store_made_by}] batches split by the worker: {split}")
    # year partitions: the 27-year batch is one INSERT; monthly ones: refused (> 100 partitions), split
    assert bool(split) == (store_made_by == "old monthly schema")
