"""`trackpipe replay` core against a real chDB store: frames stored the way the worker stores them
with a deliberately broken decoder, then replayed with today's; the store must end up exactly as
if the frames had been decoded right the first time -- rows changed counted, nothing else touched."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from trackpipe.protocols import registry
from trackpipe.protocols.base import ProtocolError
from trackpipe.streams.process import Batch, process

from trackpipe import replay, store
from trackpipe.bench_worker import mix
from trackpipe.config import Settings

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
FRAMES = 600  # 12 units of the four protocols, 50 frames each (heartbeats and SOS alarms among them)


def frames() -> list[dict[str, Any]]:
    out = []
    for k, (_, raw) in enumerate(mix(FRAMES, devices=12)):
        out.append(raw | {"received_at": START + timedelta(seconds=k)})
    return out


def ingest(client: Any, raws: list[dict[str, Any]]) -> None:
    """As the worker does: one Batch, one INSERT per table; dead letters as its sink stores them."""
    batch = Batch()
    for raw in raws:
        batch.add(raw, process(raw, lambda _: None), b"")
    for table, rows in batch.tables():
        if rows:
            store.insert(client, table, [r | {"key": ""} if table == "events" else r for r in rows])
    if batch.deadletters:
        store.insert(client, "deadletter", [letter for _, letter in batch.deadletters])


@pytest.fixture
def connect(tmp_path: Path) -> Iterator[Callable[[str], Any]]:
    """Clients on databases of one chDB directory (chDB opens one directory per process);
    closed after the test, so the next test may open another."""
    clients: list[Any] = []

    def make(name: str) -> Any:
        clients.append(store.connect(Settings.from_env(data_dir=tmp_path, database=name), ensure=True))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def broken(monkeypatch: pytest.MonkeyPatch, protocol: str, change: Callable[[Any], Any]) -> None:
    codec = registry.get(protocol)
    real = codec.decode

    def decode(frame: bytes, ctx: Any) -> Any:
        return change(real(frame, ctx))

    monkeypatch.setattr(codec, "decode", decode)


def shift_hour(decoded: Any) -> Any:  # the classic bug: a time zone applied twice
    for rec in decoded.records:
        if rec.fix_time is not None:
            rec.fix_time += timedelta(hours=1)
    return decoded


def nudge(decoded: Any) -> Any:  # a coordinate scale off by a little
    for rec in decoded.records:
        if rec.latitude is not None:
            rec.latitude += 0.001
    return decoded


def refuse(decoded: Any) -> Any:  # a decoder that gave up on frames it should read
    if decoded.records and any(r.has_position for r in decoded.records):
        raise ProtocolError("bad length", "decoder bug")
    return decoded


def contents(client: Any) -> dict[str, set[tuple[Any, ...]]]:
    """What a reader sees: positions and alarm events (FINAL), dead letters, latest positions."""
    out = {}
    for table, where in (("positions", ""), ("events", " WHERE type = 'alarm'")):
        final = client.query(f"SELECT {', '.join(store.COLUMNS[table])} FROM {table} FINAL{where}").result_rows
        out[table] = {replay.canonical(table, dict(zip(store.COLUMNS[table], r, strict=True))) for r in final}
    letters = client.query(
        "SELECT connection_id, toUnixTimestamp64Milli(time), stage, reason, detail FROM deadletter"
    ).result_rows
    out["deadletter"] = set(letters)
    out["latest"] = set(
        client.query("SELECT device_id, toUnixTimestamp64Milli(fix_time), latitude FROM latest_positions").result_rows
    )
    out["raw_frames"] = set(client.query("SELECT device_id, connection_id, seq FROM raw_frames FINAL").result_rows)
    return out


def run(client: Any, selection: replay.Selection | None = None, **kwargs: Any) -> replay.Summary:
    async def call(fn: Any, *args: Any) -> Any:
        return fn(client, *args)

    decoder = replay.Decoder(lookup=lambda _: None)
    return asyncio.run(replay.run_replay(call, selection or replay.Selection(), decoder, **kwargs))


def test_unchanged_decoders_change_nothing(connect: Callable[[str], Any]) -> None:
    client = connect("store")
    ingest(client, frames())
    before = contents(client)
    summary = run(client, chunk=37)
    assert summary.selected == summary.frames == FRAMES
    assert summary.rows_changed == 0 and summary.frames_changed == 0
    assert summary.positions.unchanged == len(before["positions"]) > 150
    assert summary.events.unchanged == len(before["events"]) > 0
    assert contents(client) == before


@pytest.mark.parametrize(
    ("protocol", "bug", "table"),
    [("gt06", shift_hour, "positions"), ("teltonika", nudge, "positions"), ("jt808", refuse, "deadletter")],
)
def test_replay_after_a_decoder_fix_equals_a_right_first_decode(
    connect: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch, protocol: str, bug: Any, table: str
) -> None:
    raws = frames()
    truth = connect("truth")
    ingest(truth, raws)
    client = connect("store")
    with monkeypatch.context() as patch:
        broken(patch, protocol, bug)
        ingest(client, raws)
    wrong = contents(client)
    assert wrong != contents(truth)
    summary = run(client, chunk=50)
    assert contents(client) == contents(truth)
    mine = [r for r in raws if r["protocol"] == protocol]
    positions = summary.positions
    if bug is shift_hour:  # every fix moved: old rows (wrong key) removed, new ones added
        assert positions.added == positions.removed > 0 and positions.changed == 0
    elif bug is nudge:  # same keys, other values: replaced in place
        assert positions.changed > 0 and positions.added == positions.removed == 0
    else:  # the refused frames' dead letters go, their positions come
        assert summary.deadletters.removed == positions.added > 0
    with_fixes = [r for r in mine if process(r, lambda _: None).positions]
    assert summary.frames_changed == len(with_fixes) > 0  # heartbeats decode the same: unchanged
    again = run(client)
    assert again.rows_changed == 0, "a replay is idempotent"


def test_selection_touches_only_what_it_names(connect: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    raws = frames()
    client = connect("store")
    with monkeypatch.context() as patch:
        broken(patch, "gt06", shift_hour)
        broken(patch, "teltonika", shift_hour)
        ingest(client, raws)
    gt06 = sorted({r["device_id"] for r in raws if r["protocol"] == "gt06"})
    summary = run(client, replay.Selection(device=gt06[0]))
    assert summary.selected == sum(1 for r in raws if r["device_id"] == gt06[0])
    fixed = contents(client)["positions"]
    wrong_tel = {p for p in fixed if p[1] == "teltonika"}
    assert summary.positions.added == summary.positions.removed > 0
    window = replay.Selection(start=START + timedelta(seconds=100), end=START + timedelta(seconds=120), protocol="gt06")
    summary = run(client, window)
    assert summary.selected == sum(
        1
        for r in raws
        if r["protocol"] == "gt06" and window.start <= r["received_at"] < window.end  # type: ignore[operator]
    )
    assert {p for p in contents(client)["positions"] if p[1] == "teltonika"} == wrong_tel  # not selected: untouched


def test_dry_run_counts_and_writes_nothing(connect: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect("store")
    with monkeypatch.context() as patch:
        broken(patch, "gt06", shift_hour)
        ingest(client, frames())
    before = contents(client)
    dry = run(client, dry_run=True)
    assert dry.positions.added == dry.positions.removed > 0
    assert contents(client) == before
    kept = run(client, keep_removed=True)
    assert kept.positions.added == dry.positions.added
    after = contents(client)["positions"]
    assert len(after) == len(before["positions"]) + dry.positions.added  # old rows left, new ones beside them


def test_a_fixed_device_id_moves_the_frames_and_their_rows(
    connect: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = frames()
    truth = connect("truth")
    ingest(truth, raws)

    def misread(decoded: Any) -> Any:  # the id read with a digit dropped
        if decoded.device_id:
            decoded.device_id = decoded.device_id[:-1]
        for rec in decoded.records:
            if rec.device_id:
                rec.device_id = rec.device_id[:-1]
        return decoded

    client = connect("store")
    with monkeypatch.context() as patch:
        broken(patch, "jt808", misread)  # JT808 frames carry the terminal's number in every header
        ingest(client, [r | {"device_id": None} if r["protocol"] == "jt808" else r for r in raws])
    summary = run(client, chunk=29)
    assert summary.devices_moved == sum(1 for r in raws if r["protocol"] == "jt808")
    now = contents(client)
    expected = contents(truth)
    assert now["positions"] == expected["positions"]
    assert now["raw_frames"] == expected["raw_frames"]
    assert now["latest"] == expected["latest"]


def test_times_parse_iso_and_spans() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert replay.parse_time("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert replay.parse_time("2026-11-30T08:00+02:00") == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert replay.parse_time("2026-11-30T08:00:00Z") == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert replay.parse_time("6h", now) == datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert replay.parse_time("2d", now) == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with pytest.raises(replay.ReplayError, match="not a time"):
        replay.parse_time("yesterday")
