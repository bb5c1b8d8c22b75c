"""Live progress of a load test: calls by phase and the running voice-to-voice p50/p95.

On a terminal it is a rich Live panel redrawn in place; when output is a file or a pipe (CI, tests) it
prints one plain line every few seconds instead, so logs stay readable.
"""

from __future__ import annotations

import time
from collections import Counter
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.panel import Panel

from iasovoice.loadtest.metrics import percentile, voice_to_voice
from iasovoice.loadtest.runner import LoadRun

PLAIN_EVERY_S = 5.0


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


class ProgressView:
    def __init__(self, run: LoadRun, console: Console, live: bool | None = None) -> None:
        self.run = run
        self.console = console
        self.live_mode = console.is_terminal if live is None else live
        self._live: Live | None = None
        self._started = time.monotonic()
        self._last_plain = 0.0

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        if self.live_mode:
            # Redrawn only from refresh() on the run's loop: no extra thread competing with the senders.
            self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(kind, error, tb)
            self._live = None

    def snapshot(self) -> dict[str, float | int | None]:
        """The numbers shown, computed from the records the run is mutating (same loop, so consistent)."""
        phases = Counter(r.phase for r in self.run.records)
        latencies = voice_to_voice(self.run.records)
        return {
            "elapsed_s": time.monotonic() - self._started,
            "scheduled": phases["scheduled"],
            "connecting": phases["connecting"],
            "active": phases["active"],
            "hanging_up": phases["hanging up"] + phases["notes"],
            "done": phases["done"],
            "failed": phases["failed"],
            "turns": len(latencies),
            "v2v_p50": percentile(latencies, 50),
            "v2v_p95": percentile(latencies, 95),
            "underruns": sum(rep.underruns for r in self.run.records for rep in r.replies),
            "errors": sum(len(r.errors) for r in self.run.records),
        }

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            return
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = now
            s = self.snapshot()
            self.console.print(
                f"[{s['elapsed_s']:6.1f} s] active {s['active']} connecting {s['connecting']} "
                f"hanging-up {s['hanging_up']} done {s['done']} failed {s['failed']} | "
                f"turns {s['turns']} v2v p50 {_ms(s['v2v_p50'])} p95 {_ms(s['v2v_p95'])} | "
                f"underruns {s['underruns']} errors {s['errors']}",
                highlight=False,
            )

    def _render(self) -> Panel:
        s = self.snapshot()
        failed = f"[red]{s['failed']}[/]" if s["failed"] else "0"
        calls = (f"active [bold]{s['active']}[/]  waiting {s['scheduled']}  connecting {s['connecting']}  "
                 f"hanging up {s['hanging_up']}  done [green]{s['done']}[/]  failed {failed}")
        latency = (f"voice-to-voice p50 [bold]{_ms(s['v2v_p50'])}[/]  p95 [bold]{_ms(s['v2v_p95'])}[/]  "
                   f"({s['turns']} turns)  underruns {s['underruns']}  errors {s['errors']}")
        url, total = self.run.settings.url, len(self.run.records)
        title = f"iasovoice loadtest → {url}: {total} calls, {s['elapsed_s']:.0f} s"
        return Panel(f"{calls}\n{latency}", title=title, title_align="left")
