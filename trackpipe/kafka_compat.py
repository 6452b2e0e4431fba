"""Client-side long polling for brokers that answer empty fetches at once.

A Kafka broker holds an empty Fetch until `fetch_max_wait_ms` passes or data
arrives.  noida-db (the embedded dev broker) answers at once, so aiokafka's
fetcher re-sends immediately and an idle consumer spins: measured 82-85% of a core
for a bare aiokafka consumer and 78% for an idle Faust worker.

`install()` wraps aiokafka's per-node fetch so that an empty answer that came back
sooner than `floor` seconds waits out the rest before the next fetch.  Against a
real Kafka an empty answer already took `fetch_max_wait_ms` (500 ms by default),
longer than the floor, so nothing changes there.  Written for aiokafka 0.14.0
(pinned in pyproject.toml); `install` refuses to patch anything it does not recognise.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.consumer import fetcher as _fetcher

log = logging.getLogger("trackpipe.kafka")

DEFAULT_FLOOR = 0.05  # s: the most an idle partition's new data waits for its next fetch
_MARK = "_trackpipe_long_poll"

FetchFn = Callable[[Any, Any, int, Any], Awaitable[bool]]


def install(floor: float = DEFAULT_FLOOR) -> bool:
    """Patch once; returns False (and logs) when aiokafka's fetcher is not the expected shape."""
    original = getattr(_fetcher.Fetcher, "_proc_fetch_request", None)
    if original is None or not inspect.iscoroutinefunction(original):
        log.warning("aiokafka fetcher not recognised; empty-fetch long polling not installed")
        return False
    if getattr(original, _MARK, False):
        return True
    params = list(inspect.signature(original).parameters)
    if params != ["self", "assignment", "node_id", "request"]:
        log.warning("aiokafka fetcher signature %s not recognised; long polling not installed", params)
        return False

    _fetcher.Fetcher._proc_fetch_request = with_floor(original, floor)  # type: ignore[method-assign]
    return True


def with_floor(fetch: FetchFn, floor: float) -> FetchFn:
    """`fetch`, but an answer without new data returns no sooner than `floor` seconds."""

    @functools.wraps(fetch)
    async def fetch_with_floor(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        has_new_data = await fetch(self, assignment, node_id, request)
        if not has_new_data:
            rest = floor - (loop.time() - started)
            if rest > 0:
                try:
                    await asyncio.sleep(rest)
                except asyncio.CancelledError:  # close or unassignment: as aiokafka's own fetch does
                    return False
        return has_new_data

    setattr(fetch_with_floor, _MARK, True)
    return fetch_with_floor
