"""`python -m bench` (`make bench`): run the six benchmarks, print their figures, write them as JSON.

  1 overhead   per-frame round trip through the call actor vs a plain websockets echo (the floor)
  2 capacity   most concurrent calls with no lost frame and p99 <= 100 ms
  3 memory     PSS per call actor; growth per idle and per active call
  4 asr        Whisper utterances/s, batched vs max_batch_size=1, at 1/4/16 callers
  5 voice      voice-to-voice latency with the real local models, 1 and 5 calls
  6 cpu        where a call's CPU goes, thread by thread, beside the same exchanges without Ray
Results: bench/results/<name>.json, the summary docs/performance_results.json, plots in docs/img/.
Each bench starts and stops its own server on loopback; run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench import report
from bench.report import console, machine

BENCHES = {1: "bench.overhead", 2: "bench.capacity", 3: "bench.memory", 4: "bench.asr_batching", 5: "bench.voice", 6: "bench.cpu"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=int, action="append", choices=sorted(BENCHES), help="run only bench N (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small levels and short windows (a smoke run, not figures)")
    args = parser.parse_args(argv)
    report.smoke_run(args.quick)
    console.print(f"machine: {machine()}")
    failed = []
    for number in args.only or sorted(BENCHES):
        started = time.monotonic()
        console.rule(f"bench {number}: {BENCHES[number]}")
        try:
            importlib.import_module(BENCHES[number]).run(quick=args.quick)
        except Exception as error:  # noqa: BLE001 - report and go on with the other benches
            console.print_exception()
            failed.append(f"{number} ({type(error).__name__})")
        console.print(f"[dim]bench {number} took {time.monotonic() - started:.0f} s[/dim]")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
