"""Child-process hygiene: children die with their parent and never outlive `trackpipe run`."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """Run in the child before exec: own process group (the terminal's Ctrl-C reaches only the
    supervisor, which stops children in order) and SIGKILL if the parent dies."""
    os.setpgid(0, 0)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether a process of that pid exists (signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(proc: subprocess.Popen, timeout: float) -> int | None:
    """SIGTERM, wait up to `timeout`, then SIGKILL the child's whole process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)
    return proc.returncode


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, every thread (Linux /proc; 0 once it
    has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


#: the worker's collector thresholds once it is ready: generation 0 collected every 50k
#: allocations instead of 700 (a batch makes many short-lived dicts)
GC_THRESHOLDS = (50_000, 20, 100)


def settle_gc() -> None:
    """For a long-lived process once its lasting objects exist (modules, tables, the app): the
    collector stops scanning them (`gc.freeze`) and collects the young generation less often.
    Measured 5-15% of the worker's per-frame cost; the worker bench applies it the same way."""
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
