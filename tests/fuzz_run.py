"""`make fuzz`: the fuzz of `tests/test_fuzz.py`, long, with figures per stage.

Stages (all seeded: a finding reproduces):
  codec   per codec, N random and mutated inputs into detect, inspect, reply_at, decode and
          split_datagram; only ProtocolError may come out.
  worker  per codec, the seeds as captured then random and mutated frames through the worker's
          next steps (tests/fuzz_rows.py): streams.process, the Avro encode of every row (same
          bytes as fastavro), store.rows_to_columns and the native INSERT block; nothing may stop
          the worker (rows the store refuses are dead letters: counted, not findings).
  values  per codec, real decoded records with odd values (NaN/inf, huge ints, naive times, lone
          surrogates, long strings, attributes of other types) through the same steps; `guarded`
          counts the inputs `streams.quality.record_problem` would turn into dead letters.
Each call runs under a 2-second alarm, so a hang (e.g. a garbled count driving a loop) is a
finding too.  Prints inputs/s per codec and stage, then every distinct finding; exits 1 if any.

    python -m tests.fuzz_run [--inputs 20000] [--stage codec|worker|values ...] [--protocol NAME ...]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from trackpipe.protocols import registry
from trackpipe.protocols.base import Codec, Context, ProtocolError
from trackpipe.streams import quality

from . import fuzz_rows
from .test_fuzz import WHEN, _mutate, _seeds

HANG_SECONDS = 2
BATCH = 200  # inputs per flush: the worker stores a batch of frames at a time
STAGES = ("codec", "worker", "values")


class Hang(BaseException):  # not an Exception: `process` turns decoder exceptions into dead letters
    pass


def _alarm(*_: object) -> None:
    raise Hang


@contextmanager
def _deadline() -> Iterator[None]:
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)


Findings = dict[tuple[Any, ...], str]


def codec_stage(codec: Codec, inputs: int, findings: Findings) -> None:
    rng = random.Random(f"trackpipe-long-fuzz-{codec.name}")
    seeds = _seeds(codec)
    for n in range(inputs):
        data = rng.randbytes(rng.randint(0, 200)) if n % 5 == 0 else _mutate(rng, rng.choice(seeds))
        for transport in sorted(codec.transports):
            calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]] = [
                ("detect", codec.detect, (data, transport)),
                ("inspect", codec.inspect, (data, transport)),
                ("reply_at", codec.reply_at, (data, transport, WHEN)),
                ("decode", codec.decode, (data, Context(transport, "123456789012345", WHEN, {}))),
            ]
            if transport == "udp":
                calls.append(("split_datagram", codec.split_datagram, (data,)))
            for step, fn, call_args in calls:
                try:
                    with _deadline():
                        fn(*call_args)
                except ProtocolError:
                    pass
                except Hang:
                    findings.setdefault((codec.name, step, "hang"), f"input #{n}: {data!r}")
                except Exception as exc:
                    where = traceback.extract_tb(exc.__traceback__)[-1]
                    key = (codec.name, step, type(exc).__name__, where.filename.rsplit("/", 1)[-1], where.lineno)
                    findings.setdefault(key, f"input #{n}: {exc} -- {data[:80]!r}")


def _through_worker(inputs: Iterator[tuple[str, dict[str, Any]]], findings: Findings) -> tuple[int, int]:
    """Feed (tag, raw) in batches; gather findings; (inputs, rows refused by the store)."""
    steps = fuzz_rows.WorkerSteps()
    count = refused = 0

    def flush() -> None:
        nonlocal refused
        try:
            with _deadline():
                steps.flush()
        except Hang:
            findings.setdefault(("insert", "hang"), "a batch")
            steps.pending = {table: [] for table in steps.pending}
        for stage, exc, tag in steps.findings:
            findings.setdefault(fuzz_rows.where(stage, exc), f"{exc!s:.200} -- {tag:.300}")
        steps.findings.clear()
        refused, steps.refused = refused + steps.refused, 0

    for tag, raw in inputs:
        count += 1
        try:
            with _deadline():
                steps.feed(raw, tag)
        except Hang:
            findings.setdefault(("process", "hang"), tag)
        if count % BATCH == 0:
            flush()
    flush()
    return count, refused


def worker_stage(codec: Codec, inputs: int, findings: Findings) -> tuple[int, int]:
    rng = random.Random(f"trackpipe-long-fuzz-worker-{codec.name}")
    return _through_worker(fuzz_rows.frames(codec, _seeds(codec), _mutate, rng, inputs), findings)


def values_stage(codec: Codec, inputs: int, findings: Findings) -> tuple[int, int, int]:
    """(inputs, refused by the store, inputs record_problem would have dead-lettered)."""
    rng = random.Random(f"trackpipe-long-fuzz-values-{codec.name}")
    decoded = fuzz_rows.decoded_seeds(codec, _seeds(codec))
    if not decoded:
        return 0, 0, 0
    guarded = 0
    with fuzz_rows.replaying() as replay:

        def counted() -> Iterator[tuple[str, dict[str, Any]]]:
            nonlocal guarded
            for tag, raw in fuzz_rows.odd_records(codec, decoded, replay, rng, inputs):
                records, device = replay.decoded.records, replay.decoded.device_id
                if any(quality.record_problem(r) for r in records) or not (device is None or quality.is_text(device)):
                    guarded += 1
                yield tag, raw

        count, refused = _through_worker(counted(), findings)
    return count, refused, guarded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=20000, help="codec-stage inputs per codec")
    parser.add_argument("--worker-inputs", type=int, help="worker-stage inputs per codec (default inputs/20)")
    parser.add_argument("--value-inputs", type=int, help="values-stage inputs per codec (default inputs/40)")
    parser.add_argument("--stage", action="append", choices=STAGES, help="only these stages (repeatable)")
    parser.add_argument("--protocol", action="append", help="only these codecs (repeatable)")
    args = parser.parse_args()
    stages = args.stage or list(STAGES)
    sizes = {
        "codec": args.inputs,
        "worker": args.worker_inputs if args.worker_inputs is not None else max(1, args.inputs // 20),
        "values": args.value_inputs if args.value_inputs is not None else max(1, args.inputs // 40),
    }
    codecs = [c for c in registry.CODECS if not args.protocol or c.name in args.protocol]
    signal.signal(signal.SIGALRM, _alarm)
    found: dict[str, Findings] = {stage: {} for stage in stages}
    summary = []
    for stage in stages:
        total = refused = guarded = 0
        started = time.perf_counter()
        for codec in codecs:
            t0 = time.perf_counter()
            extra = ""
            if stage == "codec":
                codec_stage(codec, sizes[stage], found[stage])
                count = sizes[stage]
            elif stage == "worker":
                count, turned = worker_stage(codec, sizes[stage], found[stage])
                refused += turned
                extra = f"  refused by store {turned}"
            else:
                count, turned, caught = values_stage(codec, sizes[stage], found[stage])
                refused, guarded = refused + turned, guarded + caught
                extra = f"  refused by store {turned}  guarded {caught}"
            total += count
            rate = count / max(time.perf_counter() - t0, 1e-9)
            print(f"{stage:<6} {codec.name:<10} {count:>7} inputs  {rate:>9,.0f} inputs/s{extra}", flush=True)
        took = max(time.perf_counter() - started, 1e-9)
        line = f"{stage:<6} total {total:>8} inputs  {total / took:>9,.0f} inputs/s  findings {len(found[stage])}"
        if stage != "codec":
            line += f"  refused by store {refused}"
        if stage == "values":
            line += f"  guarded by record_problem {guarded}"
        summary.append(line)
    print("\n".join(summary))
    for stage in stages:
        for key, what in found[stage].items():
            print("FINDING", stage, *key, what)
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
