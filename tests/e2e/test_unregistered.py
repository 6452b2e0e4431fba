"""The unregistered-device policy through `trackpipe run` (TRACKPIPE_UNREGISTERED):

- reject: a device the registry does not hold gets no ack, its connection is closed, a dead letter
  "unregistered device" is stored and no row; once registered (`devices add`, taken by the running
  edge from the registry topic) the same device is served; once removed it is refused again;
- flag: its data is stored as any other, and a `deviceUnknown` event comes with its deviceOnline
  (a registered device gets none)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device

from trackpipe.launcher import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

KNOWN, STRANGER = "359710049100001", "359710049100002"


def session(p: Pipeline, device: Device) -> tuple[bytes, bool]:
    """Login and one position; (what the server sent back, whether it closed the connection)."""
    fix = Fix(datetime.now(UTC).replace(microsecond=0), 52.23, 21.01, speed=12.0)
    with socket.create_connection((p.host, p.port), timeout=10) as sock:
        sock.sendall(device.login()[0] + device.position(fix))
        sock.settimeout(3.0)
        received, closed = b"", False
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                closed = True
                break
            received += chunk
    return received, closed


def count(p: Pipeline, sql: str) -> int:
    return int(p.query(sql)[0]["n"])


def wait_until(what: str, check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out: {what}")


def test_reject_policy_refuses_until_registered(tmp_path: Path) -> None:
    p = start_pipeline(tmp_path / "reject", extra_env={"TRACKPIPE_UNREGISTERED": "reject"})
    try:
        assert p.cli("devices", "add", KNOWN, "--name", "Known").returncode == 0
        time.sleep(1.5)  # the edge follows the registry topic
        reply, closed = session(p, Device(KNOWN))
        assert reply and not closed, "a registered device is acknowledged"
        reply, closed = session(p, Device(STRANGER))
        assert reply == b"" and closed, "an unregistered device gets no ack and is disconnected"
        positions = f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{STRANGER}'"
        letters = (
            f"SELECT count() AS n FROM deadletter WHERE reason = 'unregistered device' AND device_id = '{STRANGER}'"
        )
        wait_until("the refusal's dead letter", lambda: count(p, letters) >= 1)
        wait_until(
            "the known device's row",
            lambda: count(p, f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{KNOWN}'") == 1,
        )
        assert count(p, positions) == 0

        assert p.cli("devices", "add", STRANGER, "--name", "Newcomer").returncode == 0
        wait_until("the edge takes the newly registered device", lambda: session(p, Device(STRANGER))[0] != b"")
        wait_until("the newcomer's rows", lambda: count(p, positions) >= 1)

        assert p.cli("devices", "remove", KNOWN).returncode == 0
        wait_until("the edge refuses the removed device", lambda: session(p, Device(KNOWN)) == (b"", True))
    finally:
        _took, code, alive = stop_pipeline(p)
    assert not alive and code == 0, (code, alive)


def test_flag_policy_stores_and_raises_device_unknown(tmp_path: Path) -> None:
    p = start_pipeline(tmp_path / "flag", extra_env={"TRACKPIPE_UNREGISTERED": "flag"})
    try:
        assert p.cli("devices", "add", KNOWN, "--name", "Known").returncode == 0
        time.sleep(2.0)  # the worker's registry agent takes the record
        for device_id in (KNOWN, STRANGER):
            reply, closed = session(p, Device(device_id))
            assert reply and not closed
        events = "SELECT device_id, type FROM events FINAL WHERE device_id IN ('{}', '{}') ORDER BY device_id, type"
        rows = p.wait_rows(events.format(KNOWN, STRANGER), lambda r: len(r) >= 3, timeout=30)
        got = sorted((r["device_id"], r["type"]) for r in rows)
        assert got == [(KNOWN, "deviceOnline"), (STRANGER, "deviceOnline"), (STRANGER, "deviceUnknown")], got
        stored = f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{STRANGER}' AND NOT registered"
        assert count(p, stored) == 1  # flagged, and stored all the same
    finally:
        _took, code, alive = stop_pipeline(p)
    assert not alive and code == 0, (code, alive)
