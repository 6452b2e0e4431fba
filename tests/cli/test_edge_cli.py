"""`trackpipe edge` on a data dir whose spool another edge holds: one readable error line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from trackpipe.edge.spool import Spool

from trackpipe.broker import free_port
from trackpipe.cli import main
from trackpipe.config import Settings


def test_locked_spool_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")  # nothing listens: never reached
    monkeypatch.setenv("TRACKPIPE_SPOOL", "1")
    holder = Spool(Settings(data_dir=tmp_path).spool_dir)
    holder.open()  # the other edge
    try:
        code = main(["edge", "--data-dir", str(tmp_path), "--host", "127.0.0.1", "--port", str(free_port())])
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("trackpipe: error: spool ") and "in use by another edge" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (Settings(data_dir=tmp_path).run_dir / "edge.json").exists()
