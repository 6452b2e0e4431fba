"""`trackpipe devices` and `trackpipe query` against the real pipeline (the session fixture):
registry add/update/show/list/remove, unregistered devices in the list, read-only queries."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import pytest
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.carscop import Device as CarscopDevice

from trackpipe.cli import CliError, run_query

from .conftest import Pipeline

pytestmark = pytest.mark.e2e


def send(pipeline: Pipeline, device: CarscopDevice, fix: Fix) -> None:
    with socket.create_connection((pipeline.host, pipeline.port), timeout=10) as sock:
        for frame in [*device.login(), device.position(fix)]:
            sock.sendall(frame)
        time.sleep(0.2)


def listed(pipeline: Pipeline) -> dict[str, dict]:
    out = pipeline.cli("devices", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {obj["device_id"]: obj for obj in map(json.loads, out.stdout.splitlines())}


def test_add_update_show_list_remove(pipeline: Pipeline) -> None:
    device_id = "CC8000000777001"
    added = pipeline.cli("devices", "add", device_id, "--name", "Truck 9", "--account", "acme",
                "--speed-limit", "90", "--option", "speed_unit=kmh")  # fmt: skip
    assert (added.returncode, added.stdout.strip()) == (0, f"registered {device_id}"), added.stderr
    updated = pipeline.cli("devices", "add", device_id, "--offline-after", "120")
    assert updated.returncode == 0 and updated.stdout.startswith(f"updated {device_id} (offline_after)"), updated
    shown = pipeline.cli("devices", "show", device_id, "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["name"], view["account"], view["registered"]) == ("Truck 9", "acme", True)
    assert (view["speed_limit"], view["offline_after"], view["options"]) == (90.0, 120.0, {"speed_unit": "kmh"})
    assert view["online"] is None  # never seen
    table = pipeline.cli("devices", "show", device_id)
    assert "speed_limit    90 km/h" in table.stdout and "offline_after  120 s" in table.stdout
    assert listed(pipeline)[device_id]["registered"] is True
    removed = pipeline.cli("devices", "remove", device_id)
    assert (removed.returncode, removed.stdout.strip()) == (0, f"removed {device_id}")
    assert device_id not in listed(pipeline)
    gone = pipeline.cli("devices", "show", device_id)
    assert gone.returncode == 2 and "not registered and never seen" in gone.stderr


def test_remove_unknown_says_so(pipeline: Pipeline) -> None:
    out = pipeline.cli("devices", "remove", "NOSUCHDEVICE0001")
    assert out.returncode == 2 and "not registered: nothing removed" in out.stderr and out.stdout == ""


def test_list_shows_seen_devices_registered_or_not(pipeline: Pipeline) -> None:
    known, stranger = CarscopDevice("CC8000000777002", "tcp"), CarscopDevice("CC8000000777003", "tcp")
    assert pipeline.cli("devices", "add", known.device_id, "--name", "Van 2", "--account", "acme").returncode == 0
    time.sleep(2.0)  # the worker's registry agent consumes the record
    when = datetime.now(UTC).replace(microsecond=0)
    send(pipeline, known, Fix(when, 48.85, 2.35, speed=30.0))
    send(pipeline, stranger, Fix(when, 50.06, 19.94, speed=10.0))
    ids = (known.device_id, stranger.device_id)
    pipeline.wait_rows(
        f"SELECT device_id FROM latest_positions WHERE device_id IN {ids}", lambda r: len(r) == 2, timeout=30
    )
    devices = listed(pipeline)
    mine, other = devices[known.device_id], devices[stranger.device_id]
    assert (mine["registered"], mine["name"], mine["protocol"], mine["online"]) == (True, "Van 2", "carscop", True)
    assert (other["registered"], other["name"], other["protocol"], other["online"]) == (False, "", "carscop", True)
    assert (round(other["latitude"], 4), round(other["longitude"], 4)) == (50.06, 19.94)
    assert other["fix_time"].startswith(when.strftime("%Y-%m-%dT%H:%M:%S"))
    table = pipeline.cli("devices", "list")
    assert table.stdout.splitlines()[0].split()[:4] == ["device_id", "name", "account", "registered"]
    row = next(line for line in table.stdout.splitlines() if line.startswith(stranger.device_id))
    assert row.split()[1:5] == ["-", "-", "no", "carscop"]
    latest = pipeline.query(f"SELECT device_name, account FROM latest_positions WHERE device_id = '{known.device_id}'")
    assert latest == [{"device_name": "Van 2", "account": "acme"}]


def test_query_is_read_only_through_the_pipeline(pipeline: Pipeline) -> None:
    refused = pipeline.cli("query", "  -- tidy up\n  drop table positions")
    assert refused.returncode == 2 and "DROP changes the store" in refused.stderr
    assert pipeline.query("EXISTS TABLE positions") == [{"result": 1}]
    with pytest.raises(CliError, match="READONLY"):  # the store refuses it as well
        run_query(pipeline.settings, "CREATE TABLE nope (a Int8) ENGINE = Memory", read_only=True)
    empty = pipeline.cli("query", "SELECT device_id, speed FROM positions WHERE speed < 0")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.splitlines()[0].split() == ["device_id", "speed"] and empty.stdout.endswith("(0 rows)\n")
    assert pipeline.cli("query", "SELECT device_id FROM positions WHERE speed < 0", "--json").stdout == ""
    bad = pipeline.cli("query", "SELECT nope FROM positions")
    assert bad.returncode == 2, bad
    assert "FORMAT Native" not in bad.stderr and "readonly =" not in bad.stderr
    assert "nope" in bad.stderr.splitlines()[0] and "statement: SELECT nope FROM positions" in bad.stderr
