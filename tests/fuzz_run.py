"""`make fuzz`: the codec fuzz of `tests/test_fuzz.py`, long, with figures.

Per codec: N random and mutated inputs (seeded: a finding reproduces) into detect,
inspect, reply_at, decode and split_datagram, each call under a 2-second alarm, so a hang
(e.g. a garbled count driving a loop) is a finding like an exception other than
ProtocolError.  Prints inputs/s per codec and every distinct finding; exits 1 if any.

    python -m tests.fuzz_run [--inputs 20000] [--protocol NAME ...]
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
import traceback

from trackpipe.protocols import registry
from trackpipe.protocols.base import Context, ProtocolError

from .test_fuzz import WHEN, _mutate, _seeds

HANG_SECONDS = 2


class Hang(Exception):
    pass


def _alarm(*_: object) -> None:
    raise Hang


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=20000, help="inputs per codec")
    parser.add_argument("--protocol", action="append", help="only these codecs (repeatable)")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _alarm)
    findings: dict[tuple, str] = {}
    total, started = 0, time.perf_counter()
    for codec in registry.CODECS:
        if args.protocol and codec.name not in args.protocol:
            continue
        rng = random.Random(f"trackpipe-long-fuzz-{codec.name}")
        seeds = _seeds(codec)
        t0 = time.perf_counter()
        for n in range(args.inputs):
            data = rng.randbytes(rng.randint(0, 200)) if n % 5 == 0 else _mutate(rng, rng.choice(seeds))
            for transport in sorted(codec.transports):
                calls = [
                    ("detect", codec.detect, (data, transport)),
                    ("inspect", codec.inspect, (data, transport)),
                    ("reply_at", codec.reply_at, (data, transport, WHEN)),
                    ("decode", codec.decode, (data, Context(transport, "123456789012345", WHEN, {}))),
                ]
                if transport == "udp":
                    calls.append(("split_datagram", codec.split_datagram, (data,)))
                for step, fn, call_args in calls:
                    signal.alarm(HANG_SECONDS)
                    try:
                        fn(*call_args)
                    except ProtocolError:
                        pass
                    except Hang:
                        findings.setdefault((codec.name, step, "hang"), f"input #{n}: {data!r}")
                    except Exception as exc:
                        where = traceback.extract_tb(exc.__traceback__)[-1]
                        key = (codec.name, step, type(exc).__name__, where.filename.rsplit("/", 1)[-1], where.lineno)
                        findings.setdefault(key, f"input #{n}: {exc} -- {data[:80]!r}")
                    finally:
                        signal.alarm(0)
        took = time.perf_counter() - t0
        total += args.inputs
        print(f"{codec.name:<10} {args.inputs:>7} inputs  {args.inputs / took:>9,.0f} inputs/s", flush=True)
    took = time.perf_counter() - started
    print(f"total      {total:>7} inputs  {total / took:>9,.0f} inputs/s  findings: {len(findings)}")
    for key, what in findings.items():
        print("FINDING", *key, what)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
