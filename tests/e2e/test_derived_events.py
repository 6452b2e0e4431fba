"""End to end: derived events (streams/rules.py wired into the worker) through `trackpipe run`.

One pipeline with small rule thresholds.  A GT06 unit on the shared port drives every event
type (deviceOnline, deviceMoving/Stopped, deviceOverspeed from its registry speed limit,
ignitionOn/Off from the status packets' terminal info, geofenceEnter/Exit of fences added with
the CLI -- two at one fix, which must not collapse -- and a reported `alarm`); a second unit
with `--offline-after 3` goes offline by the timer.  A buffered upload of older points raises
no transition.  Every type is in `events` and on `tracker.events`.  Then the worker is killed
with SIGKILL: its rule state comes back from the changelog (no second deviceOnline, the
transition sent just before the kill is stored)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from trackpipe.protocols import gt06
from trackpipe.protocols.base import Fix
from trackpipe.protocols.devices.gt06 import Device

from trackpipe import schemas
from trackpipe.chaos import kill_part, wait, worker_ready
from trackpipe.launcher import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

RULES_ENV = {
    "TRACKPIPE_RULES_TICK": "1",
    "TRACKPIPE_TRIP_DURATION": "2",
    "TRACKPIPE_PARKING_DURATION": "2",
    "TRACKPIPE_SINK_INTERVAL": "0.3",
}
DRIVER = "359710049000001"
SLEEPER = "359710049000002"
BEATER = "359710049000003"  # sends only a login and heartbeats: online and offline all the same
DERIVED = {
    "deviceOnline",
    "deviceOffline",
    "deviceMoving",
    "deviceStopped",
    "deviceOverspeed",
    "ignitionOn",
    "ignitionOff",
    "geofenceEnter",
    "geofenceExit",
}
INSIDE, OUTSIDE = (48.0, 2.0), (48.03, 2.0)  # the fences are centred on INSIDE; OUTSIDE is 3.3 km north


def _status(device: Device, fix: Fix, ignition: bool, alarm: int = 0) -> bytes:
    """A GT06 0x16 packet: GPS, LBS, terminal info (bit 1: ignition), alarm code."""
    lbs = device._lbs()
    info = bytes([device.TERMINAL_INFO | (0x02 if ignition else 0), device.VOLTAGE_LEVEL, device.GSM_SIGNAL, alarm])
    return device._frame(gt06.GPS_LBS_STATUS_1, device._gps(fix) + bytes([len(lbs) + 1]) + lbs + info + b"\x02")


def _send(p: Pipeline, frames: list[bytes], pause: float = 0.05) -> None:
    with socket.create_connection((p.host, p.port), timeout=10) as sock:
        for frame in frames:
            sock.sendall(frame)
            time.sleep(pause)
        time.sleep(0.5)  # the edge publishes before the close


def _events(p: Pipeline, device_id: str) -> list[dict[str, Any]]:
    return p.query(
        "SELECT type, alarm, key, time, archive, attributes FROM events FINAL "
        f"WHERE device_id = '{device_id}' ORDER BY time, type, key"
    )


def _types(rows: list[dict[str, Any]]) -> list[str]:
    return [r["type"] for r in rows]


async def _topic_events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # metadata
        parts = [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        pending = {tp for tp in parts if end[tp] > 0}
        while pending and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out += [schemas.decode("events", m.value) for m in messages]
            pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        return out
    finally:
        await consumer.stop()


def _recovery_line(p: Pipeline) -> list[str]:
    lines = list(p.output)
    for log in (p.data_dir / "logs").glob("*"):
        lines += log.read_text(errors="replace").splitlines()
    return [line for line in lines if "tables recovered" in line]


def test_every_derived_event_stored_published_and_kept_across_a_worker_kill(tmp_path: Path) -> None:
    p = start_pipeline(tmp_path / "rules", extra_env=RULES_ENV)
    try:
        _scenario(p)
    finally:
        _took, code, alive = stop_pipeline(p)
    assert not alive and code == 0, (code, alive)


def _scenario(p: Pipeline) -> None:
    # -- registry and fences through the CLI
    for args in (
        ("devices", "add", DRIVER, "--name", "Driver", "--speed-limit", "50"),
        ("devices", "add", SLEEPER, "--name", "Sleeper", "--offline-after", "3"),
        ("devices", "add", BEATER, "--name", "Beater", "--offline-after", "3"),
        ("geofences", "add", "depot", "--circle", f"{INSIDE[0]},{INSIDE[1]},300"),
        (
            "geofences",
            "add",
            "yard",
            "--polygon",
            "47.99 1.99, 47.99 2.01, 48.01 2.01, 48.01 1.99",
            "--devices",
            DRIVER,
        ),
        ("geofences", "add", "elsewhere", "--circle", "10,10,100"),
        ("geofences", "remove", "elsewhere"),
    ):
        out = p.cli(*args)
        assert out.returncode == 0, (args, out.stderr)
    unknown = p.cli("geofences", "remove", "nowhere")
    assert unknown.returncode == 2 and "unknown geofence" in unknown.stderr
    listed = p.cli("geofences", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(line)["name"] for line in listed.stdout.splitlines()) == ["depot", "yard"]
    time.sleep(2.0)  # the registry and geofence agents consume the records

    # -- the driver: every transition, fix times one second apart
    driver, t0 = Device(DRIVER), datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    def at(second: int, place: tuple[float, float], speed: float) -> Fix:
        return Fix(t0 + timedelta(seconds=second), place[0], place[1], speed=speed)

    frames = [
        *driver.login(),
        driver.position(at(0, OUTSIDE, 0)),  # deviceOnline; first ignition value (ACC off): nothing
        _status(driver, at(1, OUTSIDE, 0), ignition=False),
        _status(driver, at(2, OUTSIDE, 30), ignition=True),  # ignitionOn; motion candidate
        driver.position(at(5, INSIDE, 60)),  # deviceMoving, deviceOverspeed (> 50), enter depot + yard
        driver.position(at(6, INSIDE, 0)),  # stop candidate; ignitionOff (0x22's ACC byte: speed > 0)
        _status(driver, at(9, INSIDE, 0), ignition=False, alarm=gt06.DEVICE_ALARM_CODES["sos"]),  # stopped, sos
        driver.position(at(10, OUTSIDE, 0)),  # exit depot + yard
    ]
    sleeper = Device(SLEEPER)
    _send(p, [*sleeper.login(), sleeper.position(at(0, OUTSIDE, 0))])
    beater = Device(BEATER)
    _send(p, [*beater.login(), beater.heartbeat(), beater.heartbeat()])
    _send(p, frames)
    wanted = {"deviceOnline", "ignitionOn", "ignitionOff", "deviceMoving", "deviceStopped", "deviceOverspeed"}
    wanted |= {"geofenceEnter", "geofenceExit", "alarm"}
    rows = p.wait_rows(
        f"SELECT type FROM events FINAL WHERE device_id = '{DRIVER}'", lambda r: wanted <= {x["type"] for x in r}
    )
    assert wanted <= {x["type"] for x in rows}, rows
    events = _events(p, DRIVER)
    enters = [(r["key"], r["time"]) for r in events if r["type"] == "geofenceEnter"]
    assert sorted(k for k, _ in enters) == ["depot", "yard"] and len({t for _, t in enters}) == 1, enters
    assert sorted(r["key"] for r in events if r["type"] == "geofenceExit") == ["depot", "yard"]
    for kind in ("deviceOnline", "ignitionOn", "ignitionOff", "deviceMoving", "deviceStopped", "deviceOverspeed"):
        assert _types(events).count(kind) == 1, (kind, _types(events))
    overspeed = next(r for r in events if r["type"] == "deviceOverspeed")
    assert overspeed["attributes"]["speedLimit"] == "50" and overspeed["attributes"]["trigger"] == "speed"
    alarm = next(r for r in events if r["type"] == "alarm")
    assert alarm["alarm"] == "sos"

    # -- a buffered upload of older points (inside the fences, moving fast) raises nothing
    _send(p, [*driver.login(), *driver.batch([at(3, INSIDE, 90), at(4, OUTSIDE, 90), at(7, INSIDE, 90)])])
    p.wait_rows(
        f"SELECT count() AS n FROM positions FINAL WHERE device_id = '{DRIVER}' AND archive",
        lambda r: r[0]["n"] >= 3,
    )
    time.sleep(1.0)
    assert _events(p, DRIVER) == events, "buffered points raised live transitions"

    # -- the sleeper: deviceOffline by the timer, not by a frame
    offline = p.wait_rows(
        f"SELECT type, time FROM events FINAL WHERE device_id = '{SLEEPER}' AND type = 'deviceOffline'",
        lambda r: len(r) == 1,
        timeout=20,
    )
    assert len(offline) == 1, _events(p, SLEEPER)
    last = p.query(f"SELECT max(last_seen) AS t FROM device_status FINAL WHERE device_id = '{SLEEPER}'")[0]["t"]
    gap = _as_time(offline[0]["time"]) - _as_time(last)
    assert gap == timedelta(seconds=3), gap  # offline at the last arrival + --offline-after

    # -- the heartbeat-only unit: online from its heartbeats, offline by the timer
    beats = p.wait_rows(
        f"SELECT type FROM events FINAL WHERE device_id = '{BEATER}' ORDER BY time, type",
        lambda r: "deviceOffline" in _types(r),
        timeout=20,
    )
    assert _types(beats) == ["deviceOnline", "deviceOffline"], beats

    # -- everything on tracker.events too, geofence ids in `key`
    deadline, ours = time.monotonic() + 15, []
    while time.monotonic() < deadline:  # a row can be stored before Kafka confirmed its publish
        published = asyncio.run(_topic_events(p.bootstrap(), p.settings.topic("events")))
        ours = [e for e in published if e["device_id"] in (DRIVER, SLEEPER)]
        if DERIVED | {"alarm"} <= {e["type"] for e in ours}:
            break
        time.sleep(0.5)
    assert DERIVED | {"alarm"} <= {e["type"] for e in ours}, sorted({e["type"] for e in ours})
    assert {e["key"] for e in ours if e["type"] == "geofenceEnter"} == {"depot", "yard"}

    # -- kill -9 the worker: state recovered from the changelog
    before = _events(p, DRIVER)
    _send(p, [*driver.login(), _status(driver, at(20, OUTSIDE, 0), ignition=True)])  # ignitionOn, then the kill
    killed = time.monotonic()
    kill_part(p, "worker")
    wait("worker ready after the kill", lambda: worker_ready(p))
    ready_after = time.monotonic() - killed
    _send(p, [*driver.login(), driver.position(at(21, INSIDE, 0))])  # enter depot + yard again
    after = p.wait_rows(
        f"SELECT type, key FROM events FINAL WHERE device_id = '{DRIVER}'",
        lambda r: _types(r).count("geofenceEnter") == 4 and _types(r).count("ignitionOn") == 2,
        timeout=40,
    )
    kinds = _types(after)
    assert kinds.count("ignitionOn") == 2, "the transition sent just before the kill was lost"
    assert kinds.count("geofenceEnter") == 4, kinds
    assert kinds.count("deviceOnline") == 1, "a second deviceOnline for a device that stayed online"
    new = Counter(kinds) - Counter(_types(before))
    # ignitionOn from the status packet sent before the kill; the 0x22 location's ACC byte (the
    # simulated unit reports ACC = speed > 0) then turns it off again
    assert new == Counter({"geofenceEnter": 2, "ignitionOn": 1, "ignitionOff": 1}), f"after the restart: {dict(new)}"
    print(f"worker kill -9 -> ready again in {ready_after:.1f}s; recovery: {_recovery_line(p)[-1:]}")


def _as_time(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
