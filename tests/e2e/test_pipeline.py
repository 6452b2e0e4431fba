"""End to end: real sockets on loopback -> edge -> real Kafka-protocol broker ->
Faust worker -> chDB, checked by querying the rows that come out."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from trackpipe.protocols import gt06, registry
from trackpipe.protocols.base import Context, Fix
from trackpipe.protocols.devices.carscop import Device as CarscopDevice
from trackpipe.protocols.devices.gt06 import Device as Gt06Device
from trackpipe.streams.quality import DEFAULT_FILTERS, position_problem

from trackpipe.config import Settings
from trackpipe.simulate import load, simulate, simulated, track

from ..protocols.common import frames as common_frames
from .conftest import Pipeline, start_pipeline, stop_pipeline

pytestmark = pytest.mark.e2e

CASES = [(name, t) for name in simulated() for t in sorted(registry.get(name).transports)]
_ids = itertools.count(1000, 100)


def _ts(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _ms(when: datetime) -> datetime:
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _in(ids: set[str]) -> str:
    return ", ".join(f"'{i}'" for i in sorted(ids))


def _expected(protocol: str, transport: str, sent: list[tuple[str, bytes]]) -> tuple[set, set]:
    """What the store must hold, from decoding the very frames the devices sent."""
    codec = registry.get(protocol)
    now = datetime.now(UTC)
    positions, alarms = set(), set()
    streams: dict[str, list[bytes]] = {}
    for device_id, sent_frame in sent:
        streams.setdefault(device_id, []).append(sent_frame)
    for device_id, sent_frames in streams.items():
        # what the edge publishes: the frames as its framer cuts them -- one framer per
        # connection (some framers unescape, some learn from an earlier frame)
        if transport == "udp":
            frames = [f for datagram in sent_frames for f in codec.split_datagram(datagram)]
        else:
            frames = common_frames(codec, b"".join(sent_frames))
        for frame in frames:
            decoded = codec.decode(frame, Context(transport=transport, device_id=device_id, received_at=now))
            for rec in decoded.records:
                dev = rec.device_id or decoded.device_id or device_id
                refused = rec.has_position and position_problem(  # the stream's filters (streams.quality)
                    rec.latitude, rec.longitude, rec.fix_time, rec.valid, now, DEFAULT_FILTERS
                )
                if rec.has_position and not refused:
                    positions.add((dev, _ms(rec.fix_time or now)))
                alarms.update((dev, a) for a in rec.alarms)
    return positions, alarms


@pytest.mark.parametrize(("protocol", "transport"), CASES, ids=[f"{p}-{t}" for p, t in CASES])
def test_devices_login_live_batch_alarm(pipeline: Pipeline, protocol: str, transport: str) -> None:
    sent: list[tuple[str, bytes]] = []
    report = asyncio.run(
        simulate(
            protocol=protocol,
            devices=2,
            rate=4,
            transport=transport,
            duration=1.5,
            host=pipeline.host,
            port=pipeline.port,
            batch=3,
            first_id=next(_ids),
            record=sent,
        )
    )
    assert report.ok, report.summary()
    positions, alarms = _expected(protocol, transport, sent)
    assert positions, "the simulated devices sent no position"
    ids = {d for d, _ in positions}
    rows = pipeline.wait_rows(
        "SELECT device_id, fix_time, archive, protocol, registered FROM positions FINAL "
        f"WHERE device_id IN ({_in(ids)})",
        lambda r: len(r) >= len(positions),
    )
    assert {(r["device_id"], _ts(r["fix_time"])) for r in rows} == positions
    assert {r["protocol"] for r in rows} == {protocol}
    assert not any(r["registered"] for r in rows), "unregistered devices must be marked so"
    # the buffered batch is two hours old: stored, and flagged as archive (so is anything older;
    # the 2004 position at (0, 0) a Carscop unit without a fix reports at login is filtered)
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    batch = [r for r in rows if cutoff - timedelta(hours=2) < _ts(r["fix_time"]) < cutoff]
    assert len(batch) == 2 * 3, "each device uploaded 3 buffered points"
    assert all(r["archive"] for r in rows if _ts(r["fix_time"]) < cutoff)
    assert not any(r["archive"] for r in rows if _ts(r["fix_time"]) > cutoff)
    # every alarm the devices raised is an event (devices of protocols that can raise none
    # without per-device options -- atrack, arnavi -- send no alarm frame)
    if not load(protocol)[2]:
        assert not alarms
        return
    assert alarms, "the simulated devices raised no alarm"
    events = pipeline.wait_rows(
        f"SELECT device_id, alarm, type FROM events FINAL WHERE device_id IN ({_in(ids)})",
        lambda r: {(e["device_id"], e["alarm"]) for e in r} >= alarms,
    )
    assert {(e["device_id"], e["alarm"]) for e in events} >= alarms
    # the latest position is the newest live point, never a late archive point
    latest = pipeline.query(f"SELECT device_id, fix_time FROM latest_positions WHERE device_id IN ({_in(ids)})")
    newest = {d: max(t for dd, t in positions if dd == d) for d in ids}
    assert {r["device_id"]: _ts(r["fix_time"]) for r in latest} == newest
    status = pipeline.query(f"SELECT device_id FROM device_status FINAL WHERE device_id IN ({_in(ids)})")
    assert {r["device_id"] for r in status} == ids


def _tcp(pipeline: Pipeline) -> socket.socket:
    sock = socket.create_connection((pipeline.host, pipeline.port), timeout=10)
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (TimeoutError, OSError):
        return False


def test_resent_batch_is_stored_once(pipeline: Pipeline) -> None:
    device = CarscopDevice("CS0000000777001", "tcp")
    base = datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC)
    fixes = [track(7, k, base + timedelta(minutes=k)) for k in range(5)]
    frames = device.batch(fixes)
    first = set()
    for attempt in range(2):
        with _tcp(pipeline) as sock:
            for frame in [*device.login(), *frames]:
                sock.sendall(frame)
            time.sleep(0.2)
        query = f"SELECT fix_time, connection_id FROM positions FINAL WHERE device_id = '{device.device_id}'"
        if attempt == 0:
            rows = pipeline.wait_rows(
                query, lambda r: len({_ts(x["fix_time"]) for x in r} & {f.time for f in fixes}) == 5
            )
            first = {r["connection_id"] for r in rows}
        else:  # wait until the resent copies replaced the first ones, then count
            rows = pipeline.wait_rows(
                query, lambda r, first=first: bool(r) and not {x["connection_id"] for x in r} & first
            )
    batch_rows = [r for r in rows if _ts(r["fix_time"]) in {f.time for f in fixes}]
    assert len(batch_rows) == 5, rows
    assert not {r["connection_id"] for r in rows} & first, "the resent copies were not processed"


def _deadletters(pipeline: Pipeline, peer_port: int, reason: str) -> list[dict[str, Any]]:
    return pipeline.wait_rows(
        f"SELECT reason, detail, hex(raw) AS raw, protocol, stage FROM deadletter WHERE peer = '127.0.0.1:{peer_port}'",
        lambda r: any(x["reason"] == reason for x in r),
        timeout=20,
    )


def test_unknown_bytes_dead_lettered_and_closed(pipeline: Pipeline) -> None:
    junk = bytes(range(1, 200, 3)) * 3
    with _tcp(pipeline) as sock:
        port = sock.getsockname()[1]
        sock.sendall(junk)
        assert _closed_by_server(sock, 10), "undetectable traffic must close the connection"
    rows = _deadletters(pipeline, port, "unknown")
    assert any(r["reason"] == "unknown" and r["stage"] == "edge" for r in rows), rows


def test_silent_connection_closed(pipeline: Pipeline) -> None:
    with _tcp(pipeline) as sock:
        started = time.monotonic()
        assert _closed_by_server(sock, 10)
        assert time.monotonic() - started < 8  # detect timeout is 2 s in these tests


def test_oversized_frame_dead_lettered_and_closed(pipeline: Pipeline) -> None:
    with _tcp(pipeline) as sock:
        port = sock.getsockname()[1]
        sock.sendall(b"*260101000000UD00" + b"7" * 9000)  # Carscop start, never a `^`, past the 8 KiB limit
        assert _closed_by_server(sock, 10)
    rows = _deadletters(pipeline, port, "frame too large")
    assert any(r["protocol"] == "carscop" for r in rows)


def test_truncated_frame_dead_lettered(pipeline: Pipeline) -> None:
    device = Gt06Device("359000000000123", "tcp")
    login = device.login()[0]
    position = device.position(track(1, 1, datetime.now(UTC)))
    with _tcp(pipeline) as sock:
        port = sock.getsockname()[1]
        sock.sendall(login)
        sock.settimeout(10)
        assert sock.recv(64), "login must be acknowledged"
        sock.sendall(position[: len(position) // 2])
        time.sleep(0.3)
    rows = _deadletters(pipeline, port, "truncated")
    assert any(bytes.fromhex(r["raw"]) == position[: len(position) // 2] for r in rows if r["reason"] == "truncated")


def test_bad_checksum_dead_lettered_connection_kept(pipeline: Pipeline) -> None:
    device = Gt06Device("359000000000456", "tcp")
    login = device.login()[0]
    heartbeat = device.heartbeat()
    corrupt = heartbeat[:-4] + bytes([heartbeat[-4] ^ 0xFF]) + heartbeat[-3:]  # flip a CRC byte
    with _tcp(pipeline) as sock:
        port = sock.getsockname()[1]
        sock.settimeout(10)
        sock.sendall(login)
        assert sock.recv(64)
        sock.sendall(corrupt)
        sock.sendall(heartbeat)
        reply = sock.recv(64)
        assert reply == gt06.CODEC.inspect(heartbeat, "tcp").reply, "the valid heartbeat after a bad one is acked"
    rows = _deadletters(pipeline, port, "checksum")
    assert any(bytes.fromhex(r["raw"]) == corrupt for r in rows if r["reason"] == "checksum")


def test_gt06_time_request_answered_with_server_time(pipeline: Pipeline) -> None:
    device = Gt06Device("359000000000321", "tcp")
    login = device.login()[0]
    with _tcp(pipeline) as sock:
        sock.settimeout(10)
        sock.sendall(login)
        assert sock.recv(64) == gt06.CODEC.inspect(login, "tcp").reply
        before = datetime.now(UTC).replace(microsecond=0)
        sock.sendall(gt06.build_frame(gt06.TIME_REQUEST, b"", 9))
        reply = sock.recv(64)
        after = datetime.now(UTC)
    assert reply[:4] == b"\x78\x78\x0b\x8a", reply.hex()
    told = datetime(2000 + reply[4], *reply[5:10], tzinfo=UTC)
    assert before <= told <= after


def test_registered_device_is_enriched(pipeline: Pipeline) -> None:
    device = CarscopDevice("CS0000000555001", "tcp")
    cli = [sys.executable, "-m", "trackpipe.cli"]
    out = subprocess.run(
        [
            *cli,
            "devices",
            "add",
            device.device_id,
            "--name",
            "Truck 7",
            "--account",
            "acme",
            "--data-dir",
            str(pipeline.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    time.sleep(2.0)  # the registry agent consumes the device record
    when = datetime.now(UTC).replace(microsecond=0)
    with _tcp(pipeline) as sock:
        for frame in [*device.login(), device.position(Fix(when, 48.85, 2.35, speed=30.0))]:
            sock.sendall(frame)
        time.sleep(0.2)
    rows = pipeline.wait_rows(
        "SELECT device_name, account, registered, fix_time FROM positions FINAL "
        f"WHERE device_id = '{device.device_id}'",
        lambda r: any(_ts(x["fix_time"]) == when for x in r),
    )
    row = next(x for x in rows if _ts(x["fix_time"]) == when)
    assert (row["device_name"], row["account"], row["registered"]) == ("Truck 7", "acme", True)


def test_query_cli_json_lines(pipeline: Pipeline) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackpipe.cli",
            "query",
            "SELECT device_id, fix_time FROM positions LIMIT 3",
            "--format",
            "json",
            "--data-dir",
            str(pipeline.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines and all(set(obj) == {"device_id", "fix_time"} for obj in lines)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "trackpipe.cli",
            "query",
            "SELECT nope FROM nowhere",
            "--data-dir",
            str(pipeline.data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("trackpipe: error:"), bad.stderr


def test_reply_only_after_kafka_confirmed(pipeline: Pipeline) -> None:
    """An edge whose Kafka is down never acks; with Kafka up the acked frame is already in the topic."""
    from aiokafka import AIOKafkaConsumer
    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.server import Edge

    from trackpipe.broker import free_port

    device = Gt06Device("359000000000789", "tcp")
    login = device.login()[0]

    async def login_reply(bootstrap: str) -> bytes | None:
        settings = Settings.from_env(host="127.0.0.1", port=0, data_dir=pipeline.data_dir)
        publisher = Publisher(bootstrap, timeout=2.0)
        edge = Edge(settings, publisher)
        await publisher.start()
        await edge.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
            writer.write(login)
            await writer.drain()
            try:
                return await asyncio.wait_for(reader.read(64), 8)  # b"" when the edge closes on us
            finally:
                writer.close()
        finally:
            await edge.stop()
            await publisher.stop()

    assert not asyncio.run(login_reply(f"127.0.0.1:{free_port()}")), "no ack may be sent while Kafka is down"
    reply = asyncio.run(login_reply(pipeline.bootstrap()))
    assert reply == gt06.CODEC.inspect(login, "tcp").reply

    async def frame_in_topic() -> bool:
        consumer = AIOKafkaConsumer(
            pipeline.settings.topic("raw"), bootstrap_servers=pipeline.bootstrap(), auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            from trackpipe import schemas

            batches = await consumer.getmany(timeout_ms=5000, max_records=100000)
            return any(
                schemas.decode("raw", m.value)["frame"] == login and m.key == b"359000000000789"
                for msgs in batches.values()
                for m in msgs
            )
        finally:
            await consumer.stop()

    assert asyncio.run(frame_in_topic())


def test_idle_connection_closed_and_partial_frame_dead_lettered(pipeline: Pipeline) -> None:
    import dataclasses

    from trackpipe.edge.publisher import Publisher
    from trackpipe.edge.server import Edge

    device = CarscopDevice("CS0000000888001", "tcp")

    async def scenario() -> tuple[float, Any]:
        settings = dataclasses.replace(
            Settings.from_env(host="127.0.0.1", port=0, data_dir=pipeline.data_dir),
            idle_timeout=1.0,
        )
        publisher = Publisher(pipeline.bootstrap(), timeout=5.0)
        edge = Edge(settings, publisher)
        await publisher.start(wait=True)
        await edge.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
            for frame in device.login():
                writer.write(frame)
            writer.write(b"*2611241200")  # the start of a frame that never completes
            await writer.drain()
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 10) == b""  # the edge closed the connection
            took = time.monotonic() - started
            writer.close()
            await asyncio.sleep(0.5)  # the dead letter is published before the socket is closed
            return took, edge.stats
        finally:
            await edge.stop()
            await publisher.stop()

    took, stats = asyncio.run(scenario())
    assert 0.9 <= took < 5, took
    assert any(reason.startswith("idle") for reason in stats.closed), stats.closed
    rows = pipeline.wait_rows(
        f"SELECT reason, raw FROM deadletter WHERE device_id = '{device.device_id}' AND reason = 'truncated'",
        lambda r: bool(r),
    )
    assert [r["raw"] for r in rows] == ["*2611241200"]


def test_restart_keeps_data_and_stops_cleanly(tmp_path) -> None:
    p = start_pipeline(tmp_path / "restart")
    try:
        sent: list[tuple[str, bytes]] = []
        report = asyncio.run(
            simulate(
                protocol="carscop",
                devices=1,
                rate=4,
                transport="tcp",
                duration=1.0,
                host=p.host,
                port=p.port,
                batch=2,
                first_id=90001,
                record=sent,
            )
        )
        assert report.ok, report.summary()
        positions, _ = _expected("carscop", "tcp", sent)
        before = p.wait_rows("SELECT count() AS n FROM positions FINAL", lambda r: r and r[0]["n"] >= len(positions))
        assert before[0]["n"] == len(positions)
    finally:
        took, code, alive = stop_pipeline(p)
    assert not alive and took < 10 and code == 0, (took, code, alive)
    q = start_pipeline(tmp_path / "restart")
    try:
        after = q.query("SELECT count() AS n FROM positions FINAL")
        assert after[0]["n"] == before[0]["n"]
    finally:
        took, code, alive = stop_pipeline(q)
    assert not alive and took < 10 and code == 0, (took, code, alive)
