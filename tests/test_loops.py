"""`trackpipe.loops`: which event loop each part runs on, and running a coroutine on it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from trackpipe import loops

uvloop = pytest.importorskip("uvloop")


def _no_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loops, "uvloop_available", lambda: False)


@pytest.mark.parametrize(
    ("setting", "part", "expected"),
    [
        ("auto", "edge", "uvloop"),
        ("auto", "worker", "asyncio"),
        ("", "edge", "uvloop"),
        ("asyncio", "edge", "asyncio"),
        ("asyncio", "worker", "asyncio"),
        ("uvloop", "edge", "uvloop"),
        ("uvloop", "worker", "uvloop"),
        (" UVLoop ", "worker", "uvloop"),
    ],
)
def test_choice_with_uvloop_installed(setting: str, part: str, expected: str) -> None:
    assert loops.choose(part, setting) == expected


def test_choice_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loops.ENV, raising=False)
    assert loops.choose("edge") == "uvloop"
    assert loops.choose("worker") == "asyncio"
    monkeypatch.setenv(loops.ENV, "asyncio")
    assert loops.choose("edge") == "asyncio"
    monkeypatch.setenv(loops.ENV, "uvloop")
    assert loops.choose("worker") == "uvloop"


def test_auto_without_uvloop_is_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_uvloop(monkeypatch)
    assert loops.choose("edge", "auto") == "asyncio"
    assert loops.choose("worker", "auto") == "asyncio"
    assert loops.choose("edge", "asyncio") == "asyncio"


def test_uvloop_asked_for_but_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_uvloop(monkeypatch)
    with pytest.raises(ValueError, match=r"TRACKPIPE_LOOP=uvloop but uvloop is not installed"):
        loops.choose("edge", "uvloop")


def test_unknown_setting_and_part_are_errors() -> None:
    with pytest.raises(ValueError, match=r"TRACKPIPE_LOOP='trio' is not one of: auto, asyncio, uvloop"):
        loops.choose("edge", "trio")
    with pytest.raises(ValueError, match=r"unknown part 'sink'"):
        loops.choose("sink", "auto")


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize(
    ("setting", "part", "expected"),
    [("uvloop", "edge", uvloop.Loop), ("auto", "edge", uvloop.Loop), ("auto", "worker", asyncio.BaseEventLoop)],
)
def test_run_uses_the_chosen_loop(
    setting: str, part: str, expected: type, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(loops.ENV, setting)
    with caplog.at_level(logging.INFO, logger="trackpipe.loops"):
        got = loops.run(_loop_type(), part)
    assert issubclass(got, expected)
    if expected is not uvloop.Loop:
        assert not issubclass(got, uvloop.Loop)
    name = "uvloop" if expected is uvloop.Loop else "asyncio"
    assert [r.getMessage() for r in caplog.records] == [f"{part}: event loop {name}"]


def test_run_explicit_asyncio_is_not_uvloop() -> None:
    got = loops.run(_loop_type(), "edge", "asyncio")
    assert issubclass(got, asyncio.BaseEventLoop) and not issubclass(got, uvloop.Loop)


def test_run_returns_the_result_and_propagates_errors() -> None:
    async def boom() -> None:
        raise RuntimeError("inside")

    async def value() -> int:
        return 42

    assert loops.run(value(), "edge", "uvloop") == 42
    with pytest.raises(RuntimeError, match="inside"):
        loops.run(boom(), "edge", "uvloop")


def test_run_with_a_bad_choice_closes_the_coroutine(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_uvloop(monkeypatch)
    coro = _loop_type()
    with pytest.raises(ValueError, match="not installed"):
        loops.run(coro, "edge", "uvloop")
    assert coro.cr_frame is None  # closed: no "never awaited" warning, nothing ran


def test_edge_cli_shows_a_bad_loop_as_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trackpipe.broker import free_port
    from trackpipe.cli import main

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # never reached
    monkeypatch.setenv(loops.ENV, "trio")
    code = main(["edge", "--data-dir", str(tmp_path), "--host", "127.0.0.1", "--port", str(free_port())])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip() == "trackpipe: error: TRACKPIPE_LOOP='trio' is not one of: auto, asyncio, uvloop"


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
@pytest.mark.parametrize("own_poller", [True, False], ids=["own-poller", "create-server"])
def test_the_edge_serves_tcp_and_udp_on_each_loop(
    loop_name: str, own_poller: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GT06 login over TCP and over UDP gets its reply, with the edge's own poller (Linux) and
    through `loop.create_server` (no epoll); uvloop's transports are not asyncio.Transport
    subclasses, which the create_server path once asserted."""
    from trackpipe.edge import server
    from trackpipe.protocols.devices.gt06 import Device

    from trackpipe.bench_edge import NullPublisher
    from trackpipe.config import Settings

    if own_poller and not server.own_poller_available():
        pytest.skip("the edge's poller needs epoll")
    if not own_poller:
        monkeypatch.setattr(server, "own_poller_available", lambda: False)

    class Udp(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not self.got.done():
                self.got.set_result(data)

    async def scenario() -> tuple[type, bytes, bytes, str, int]:
        edge = server.Edge(Settings(host="127.0.0.1", port=0, edge_id="t", log_level="warning"), NullPublisher())  # type: ignore[arg-type]
        await edge.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", edge.tcp_port)
            writer.write(Device("359000000000001", "tcp").login()[0])
            tcp_reply = await asyncio.wait_for(reader.readexactly(10), 5)
            (conn,) = edge.connections
            peer, local_port = conn.peer[0], conn.local_port
            transport, udp = await asyncio.get_running_loop().create_datagram_endpoint(
                Udp, remote_addr=("127.0.0.1", edge.udp_port)
            )
            transport.sendto(Device("359000000000002", "udp").login()[0])
            udp_reply = await asyncio.wait_for(udp.got, 5)
            transport.close()
            writer.close()
            return type(asyncio.get_running_loop()), tcp_reply, udp_reply, peer, local_port
        finally:
            await edge.stop()

    kind, tcp_reply, udp_reply, peer, local_port = loops.run(scenario(), "edge", loop_name)
    assert issubclass(kind, uvloop.Loop) == (loop_name == "uvloop")
    assert tcp_reply[:2] == b"\x78\x78" and len(tcp_reply) == 10
    assert udp_reply[:2] == b"\x78\x78"
    assert peer == "127.0.0.1" and local_port > 0


def test_dump_tasks_logs_where_each_task_waits(caplog: pytest.LogCaptureFixture) -> None:
    async def inner(event: asyncio.Event) -> None:
        await event.wait()

    async def outer_waiter(event: asyncio.Event) -> None:
        await inner(event)

    async def main() -> int:
        event = asyncio.Event()
        task = asyncio.create_task(outer_waiter(event), name="the-waiter")
        await asyncio.sleep(0)
        count = loops.dump_tasks()
        event.set()
        await task
        return count

    with caplog.at_level(logging.WARNING, logger="trackpipe.loops"):
        assert asyncio.run(main()) == 2  # main and the waiter
    text = "\n".join(r.getMessage() for r in caplog.records)
    waiter = text[text.index("task the-waiter:") :]
    assert "outer_waiter" in waiter and "inner" in waiter and "wait" in waiter


def test_usr1_dumps_the_tasks_then_the_parts_own_state(caplog: pytest.LogCaptureFixture) -> None:
    import os
    import signal

    told: list[str] = []

    async def main() -> None:
        loops.dump_tasks_on_signal(also=lambda: told.append("state"))
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):  # the handler runs on a later loop turn
            if told:
                break
            await asyncio.sleep(0.01)
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)

    with caplog.at_level(logging.WARNING, logger="trackpipe.loops"):
        asyncio.run(main())
    assert told == ["state"]
    assert any(r.getMessage().startswith("task ") for r in caplog.records)
