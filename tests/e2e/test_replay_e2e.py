"""Fix a decoder setting, fix the past: frames of a Carscop unit that reports km/h are stored as
knots (the default), the operator sets the device's `speed_unit=kmh` option and replays its frames
through the running pipeline's worker -- a dry run first, then the replay; only that device's speeds
change, every raw frame is in `raw_frames`, a second replay changes nothing."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.carscop import Device as CarscopDevice

from .conftest import Pipeline

pytestmark = pytest.mark.e2e

KNOT = 1.852
POINTS = 12


def send_track(pipeline: Pipeline, device: CarscopDevice, start: datetime) -> None:
    with socket.create_connection((pipeline.host, pipeline.port), timeout=10) as sock:
        for frame in device.login():
            sock.sendall(frame)
        for n in range(POINTS):
            fix = Fix(start + timedelta(seconds=30 * n), 52.2 + n * 0.001, 21.0, speed=40.0 + n)
            sock.sendall(device.position(fix))
        time.sleep(0.3)


def speeds(pipeline: Pipeline, device_id: str) -> list[float]:
    rows = pipeline.query(f"SELECT speed FROM positions FINAL WHERE device_id = '{device_id}' ORDER BY fix_time")
    return [round(r["speed"], 3) for r in rows]


def test_replay_after_an_option_fix_changes_that_device_only(pipeline: Pipeline) -> None:
    fixed = CarscopDevice("CC8000000888001", "tcp", speed_unit="kmh")  # a unit set up to report km/h
    other = CarscopDevice("CC8000000888002", "tcp")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    for device in (fixed, other):
        send_track(pipeline, device, start)
    for device in (fixed, other):
        pipeline.wait_rows(
            f"SELECT count() FROM positions FINAL WHERE device_id = '{device.device_id}'",
            lambda r: r[0]["count()"] == POINTS,
            timeout=30,
        )
    stored = pipeline.query(
        f"SELECT kind, count() AS n FROM raw_frames FINAL WHERE device_id = '{fixed.device_id}' GROUP BY kind"
    )
    kinds = {r["kind"]: r["n"] for r in stored}
    assert kinds["position"] == POINTS and kinds.get("login", 0) >= 1, kinds  # every frame, as the device sent it
    frames = sum(kinds.values())
    as_knots = speeds(pipeline, fixed.device_id)
    other_before = speeds(pipeline, other.device_id)
    # the device sends km/h: the stored speeds are the default reading (knots -> km/h), 1.852x too high
    assert as_knots[0] == pytest.approx(40.0 * KNOT, abs=0.01)

    added = pipeline.cli("devices", "add", fixed.device_id, "--name", "Van 8", "--option", "speed_unit=kmh")
    assert added.returncode == 0, added.stderr
    time.sleep(2.0)  # the worker's registry agent takes the record

    dry = pipeline.cli("replay", "--device", fixed.device_id, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["selected"] == frames
    assert planned["positions"]["changed"] == POINTS and planned["positions"]["removed"] == 0
    assert speeds(pipeline, fixed.device_id) == as_knots  # a dry run writes nothing

    done = pipeline.cli("replay", "--device", fixed.device_id, "--progress")
    assert done.returncode == 0, done.stderr
    assert f"rows changed: {POINTS}" in done.stdout, done.stdout
    assert "100%" in done.stderr  # the progress line reached its end
    assert speeds(pipeline, fixed.device_id) == [pytest.approx(40.0 + n, abs=0.01) for n in range(POINTS)]
    assert speeds(pipeline, other.device_id) == other_before  # not selected: untouched
    latest = pipeline.query(f"SELECT speed FROM latest_positions WHERE device_id = '{fixed.device_id}'")
    assert latest[0]["speed"] == pytest.approx(40.0 + POINTS - 1, abs=0.01)

    again = pipeline.cli("replay", "--device", fixed.device_id, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["rows_changed"] == 0, again


def test_replay_refuses_bad_input_readably(pipeline: Pipeline) -> None:
    out = pipeline.cli("replay", "--protocol", "nosuchproto")
    assert out.returncode == 2 and "unknown protocol 'nosuchproto'" in out.stderr
    out = pipeline.cli("replay", "--from", "1h", "--to", "2h")
    assert out.returncode == 2 and "is not before" in out.stderr
