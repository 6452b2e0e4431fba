"""A real embedded pipeline (noida-db broker, Faust worker, chDB, edge on loopback)
started once per test session by `trackpipe run`, exactly as a user starts it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from trackpipe.broker import free_port
from trackpipe.launcher import STOP_LIMIT, Pipeline, start_pipeline, stop_pipeline

__all__ = ["Pipeline", "start_pipeline", "stop_pipeline"]


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    pinned = free_port()  # a listener pinned to GT06 beside the shared port (TRACKPIPE_PORTS)
    p = start_pipeline(tmp_path_factory.mktemp("pipeline"), extra_env={"TRACKPIPE_PORTS": f"{pinned}:gt06"})
    p.pinned_gt06 = pinned  # type: ignore[attr-defined]
    yield p
    took, code, alive = stop_pipeline(p)
    assert not alive, f"processes left behind: {alive}"
    assert code == 0, f"trackpipe run exited with status {code}"
    assert took < STOP_LIMIT, f"pipeline took {took:.1f}s to stop"
