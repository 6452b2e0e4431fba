"""`trackpipe simulate` mends: a closed port, a reader that goes away, progress lines."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from trackpipe.protocols.base import Context, Fix
from trackpipe.protocols.carscop import CODEC as CARSCOP
from trackpipe.protocols.devices.carscop import Device as CarscopDevice

from trackpipe.broker import free_port
from trackpipe.cli import EXIT_BROKEN_PIPE, main
from trackpipe.simulate import simulate


@pytest.mark.parametrize(("protocol", "transport"), [("carscop", "tcp"), ("carscop", "udp"), ("gt06", "tcp")])
def test_closed_port_says_connection_refused(protocol: str, transport: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    argv = ["simulate", "--protocol", protocol, "--transport", transport, "--port", str(port), "--duration", "0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "connection refused" in err and f"127.0.0.1:{port}" in err
    assert "sends no replies" not in err


async def test_progress_lines_and_no_reply_note() -> None:
    frames: list[bytes] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(4096):
            frames.append(chunk)
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    out = io.StringIO()
    try:
        report = await simulate(
            protocol="carscop", devices=2, rate=10, transport="tcp", duration=1.0, host="127.0.0.1", port=port,
            batch=1, progress=0.3, progress_out=out,
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all("frames sent" in line for line in lines), lines
    assert report.ok and report.connected == 2 and report.refused == 0
    assert "(carscop sends no replies)" in report.summary()


def test_simulated_carscop_login_carries_no_bogus_position() -> None:
    device = CarscopDevice("CC8000000000001")
    (login,) = device.login()
    info = CARSCOP.inspect(login, "tcp")
    assert (info.kind, info.device_id) == ("login", "CC8000000000001")
    decoded = CARSCOP.decode(login, Context("tcp", None, datetime.now(UTC), {}))
    assert decoded.device_id == "CC8000000000001" and decoded.records == []
    fix = Fix(datetime(2026, 1, 1, 10, 0, tzinfo=UTC), 52.2297, 21.0122, speed=10.0)
    device.position(fix)
    (relogin,) = CARSCOP.decode(device.login()[0], Context("tcp", None, datetime.now(UTC), {})).records
    assert relogin.fix_time == fix.time and abs(relogin.latitude - fix.latitude) < 1e-5


def test_output_into_a_closed_pipe_exits_quietly() -> None:
    """`trackpipe protocols | head -0`: the reader is gone before we write."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "trackpipe.cli", "protocols"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reading end closes at once
    err = proc.stderr.read().decode()
    assert proc.wait(60) == EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
