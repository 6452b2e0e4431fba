"""The empty-fetch floor around aiokafka's per-node fetch (unit test of that wrapper)."""

from __future__ import annotations

import asyncio

from aiokafka.consumer import fetcher

from trackpipe import kafka_compat


def test_installs_on_the_pinned_aiokafka_once() -> None:
    assert kafka_compat.install()
    wrapped = fetcher.Fetcher._proc_fetch_request
    assert getattr(wrapped, kafka_compat._MARK)
    assert kafka_compat.install()  # idempotent: never wraps twice
    assert fetcher.Fetcher._proc_fetch_request is wrapped


def test_empty_answer_waits_out_the_floor_data_does_not() -> None:
    answers = iter([False, True])

    async def fetch(self, assignment, node_id, request) -> bool:
        return next(answers)

    patched = kafka_compat.with_floor(fetch, floor=0.2)

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        assert await patched(None, None, 1, None) is False
        t1 = loop.time()
        assert await patched(None, None, 1, None) is True
        return t1 - t0, loop.time() - t1

    empty, full = asyncio.run(run())
    assert empty >= 0.19  # an immediate empty answer is held until the floor
    assert full < 0.1  # new data is handed over at once


def test_cancelled_wait_returns_like_aiokafka() -> None:
    async def fetch(self, assignment, node_id, request) -> bool:
        return False

    patched = kafka_compat.with_floor(fetch, floor=5.0)

    async def run() -> bool:
        task = asyncio.ensure_future(patched(None, None, 1, None))
        await asyncio.sleep(0.05)
        task.cancel()
        return await task

    assert asyncio.run(run()) is False
