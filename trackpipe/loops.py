"""The event loop each part runs on: `TRACKPIPE_LOOP` = `auto` (default) | `asyncio` | `uvloop`.

`auto` means uvloop for the edge when it is importable (else asyncio), and asyncio for the worker
(measured: uvloop gave the Faust worker no gain).  An explicit `uvloop` applies to every part and
is an error where uvloop cannot be imported; an explicit `asyncio` always works.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

ENV = "TRACKPIPE_LOOP"
CHOICES = ("auto", "asyncio", "uvloop")
PARTS = ("edge", "worker")
_AUTO_UVLOOP = frozenset({"edge"})  # the parts `auto` puts on uvloop when it is there

log = logging.getLogger("trackpipe.loops")
T = TypeVar("T")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def choose(part: str, setting: str | None = None) -> str:
    """The loop name ("asyncio" or "uvloop") for `part`; `setting` defaults to $TRACKPIPE_LOOP.
    Raises ValueError with a readable message for an unknown setting or part, or for `uvloop`
    asked for where it cannot be imported."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r} (one of: {', '.join(PARTS)})")
    raw = os.environ.get(ENV, "auto") if setting is None else setting
    value = raw.strip().lower() or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={raw!r} is not one of: {', '.join(CHOICES)}")
    if value == "auto":
        return "uvloop" if part in _AUTO_UVLOOP and uvloop_available() else "asyncio"
    if value == "uvloop" and not uvloop_available():
        raise ValueError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop, or {ENV}=asyncio)")
    return value


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for `asyncio.Runner` (None: asyncio's default loop)."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    if name == "asyncio":
        return None
    raise ValueError(f"unknown event loop {name!r} (one of: asyncio, uvloop)")


def run(coro: Coroutine[Any, Any, T], part: str, setting: str | None = None) -> T:
    """Run `coro` to completion on the loop chosen for `part` (as `asyncio.run` does), logging
    the choice once.  A bad choice raises ValueError before anything runs (the coroutine is closed)."""
    try:
        name = choose(part, setting)
        factory = loop_factory(name)
    except ValueError:
        coro.close()
        raise
    log.info("%s: event loop %s", part, name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where `task` waits: its coroutine and, down the chain, what each awaits (file:line)."""
    chain: list[str] = []
    obj: Any = task.get_coro()
    while obj is not None and len(chain) < 40:
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "ag_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        nxt = getattr(obj, "cr_await", None) or getattr(obj, "ag_await", None) or getattr(obj, "gi_yieldfrom", None)
        if nxt is None and frame is None:
            chain.append(repr(obj)[:200])
        obj = nxt
    return chain


def dump_tasks(logger: logging.Logger | None = None) -> int:
    """Log where every task of the running loop waits (its await chain); returns how many."""
    out = logger or log
    tasks = asyncio.all_tasks()
    for task in tasks:
        out.warning("task %s:\n  %s", task.get_name(), "\n  ".join(_awaiting(task)))
    return len(tasks)


def dump_tasks_on_signal(sig: int | None = None, also: Callable[[], None] | None = None) -> None:
    """`kill -USR1 <pid>` logs every task's await chain (a stuck part shows where it waits), then
    calls `also` (the part's own state)."""
    import signal

    def dump() -> None:
        dump_tasks()
        if also is not None:
            also()

    asyncio.get_running_loop().add_signal_handler(sig or signal.SIGUSR1, dump)
