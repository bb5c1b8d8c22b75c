"""`iasovoice loadtest`: how many concurrent calls does this gateway hold, at what latency?

Exit codes: 0 every call succeeded, 1 some calls failed (see the summary and results.json), 2 the test
could not run (unreachable server, bad arguments, no audio), 130 interrupted (partial results written).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from iasovoice.config import AppConfig
from iasovoice.demo_audio import AUDIO_DIR
from iasovoice.loadtest.audio import LoadTestError, load_pool
from iasovoice.loadtest.display import ProgressView
from iasovoice.loadtest.metrics import parse_gateway_log, summarize
from iasovoice.loadtest.report import print_summary, results_document, write_plot, write_results
from iasovoice.loadtest.runner import LoadRun, LoadSettings, TokenFor, check_reachable


def register(subparsers: Any) -> None:  # argparse's _SubParsersAction is private
    p = subparsers.add_parser(
        "loadtest", help="simulate N concurrent callers with real recordings; measure latency, gaps and notes",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", help="gateway address (default: ws://127.0.0.1:<server.port>)")
    p.add_argument("--calls", type=int, default=10, help="simulated calls in total (default 10)")
    p.add_argument("--ramp", type=float, default=10.0, help="seconds over which calls start, linearly (default 10)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="seconds each call talks before hanging up; turns repeat from the pool (default 30)")
    p.add_argument("--audio", type=Path, default=AUDIO_DIR, help="folder of WAV/FLAC caller recordings")
    p.add_argument("--no-split", action="store_true",
                   help="one recording = one caller turn (default: cut at pauses)")
    p.add_argument("--rate", type=int, default=8000, choices=(8000, 16000), help="line sample rate (default 8000)")
    p.add_argument("--out", type=Path, help="output folder (default out/loadtest-<timestamp>)")
    p.add_argument("--token-secret-env", metavar="NAME",
                   help="env var with the HS256 secret for per-call tokens (default: server.auth.secret_env "
                        "when server.auth.mode is jwt-hs256)")
    p.add_argument("--spawn", action="store_true", help="start `iasovoice serve` for this run and stop it after")
    p.add_argument("--spawn-timeout", type=float, default=600.0, help="seconds to wait for a spawned server")
    p.add_argument("--server-log", type=Path,
                   help="gateway log to read per-call frame counts from (automatic with --spawn)")
    p.add_argument("--reply-quiet", type=float, default=0.8, help="agent silence that ends its reply (s)")
    p.add_argument("--reply-timeout", type=float, default=30.0, help="a turn without reply audio by then fails (s)")
    p.add_argument("--note-timeout", type=float, default=180.0,
                   help="hang-up → note must be available within this (s); 0 skips the note check")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="websocket open timeout (s)")
    p.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    p.set_defaults(handler=cmd_loadtest)


def _token_for(args: argparse.Namespace, config: AppConfig) -> TokenFor:
    """Per-call HS256 tokens when a secret is at hand; none (an open embedded gateway) otherwise.

    Each token lives as long as its call can (ramp, talk, note wait, plus margin): the note is fetched
    with the same token after hang-up.
    """
    from gateway.auth import call_token

    auth = config.server.auth
    name = args.token_secret_env or (auth.secret_env if auth.mode == "jwt-hs256" else None)
    secret = os.environ.get(name) if name else None
    if args.token_secret_env and not secret:
        raise LoadTestError(f"--token-secret-env names ${args.token_secret_env}, but it is not set")
    if not secret:
        return lambda call_id: None
    key = secret.encode()
    ttl_s = int(args.ramp + args.duration + args.note_timeout) + 3600
    return lambda call_id: call_token(key, call_id, ttl_s, audience=auth.audience, issuer=auth.issuer)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: it roughly halves the per-frame cost of hundreds of paced senders."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _attach_gateway_counts(run: LoadRun, log_path: Path | None) -> bool:
    if log_path is None or not log_path.is_file():
        return False
    counts = parse_gateway_log(log_path.read_text(errors="replace"))
    for record in run.records:
        if record.call_id in counts:
            record.server_frames_in, record.server_frames_out = counts[record.call_id]
    return True


def cmd_loadtest(args: argparse.Namespace, config: AppConfig) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)  # logs and pipes: keep summary lines whole
    started_at = datetime.now().isoformat(timespec="seconds")
    out_dir: Path = args.out or Path("out") / f"loadtest-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    settings = LoadSettings(
        url=args.url or f"ws://127.0.0.1:{config.server.port}", calls=args.calls, ramp_s=args.ramp,
        duration_s=args.duration, reply_quiet_s=args.reply_quiet, reply_timeout_s=args.reply_timeout,
        note_timeout_s=args.note_timeout, connect_timeout_s=args.connect_timeout, run_id=LoadRun.new_run_id(),
    )
    settings.validate()
    pool = load_pool(args.audio, args.rate, split=not args.no_split)
    token_for = _token_for(args, config)
    say: Callable[[str], None] = lambda message: console.print(f"… {message}", highlight=False)
    with ExitStack() as stack:
        server_log: Path | None = args.server_log
        if args.spawn:
            from iasovoice.loadtest.spawn import spawned_server

            overrides = list(args.overrides or [])
            if args.token_secret_env:
                overrides += ["server.auth.mode=jwt-hs256", f"server.auth.secret_env={args.token_secret_env}"]
            server = stack.enter_context(spawned_server(out_dir, args.config, overrides, args.spawn_timeout, say))
            settings = replace(settings, url=server.url)
            server_log = server.log_path
        else:
            check_reachable(settings.url)
        run = LoadRun(settings, pool, token_for)
        say(f"{settings.calls} calls over {settings.ramp_s:g} s, ~{settings.duration_s:g} s each, against "
            f"{settings.url}; {len(pool.turns)} caller turns ({pool.total_s:.0f} s of speech) from {args.audio}")
        interrupted = False
        with ProgressView(run, console, live=False if args.no_live else None) as view:
            try:
                with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                    runner.run(run.run(on_tick=view.refresh))
            except KeyboardInterrupt:
                interrupted = True
        if server_log is not None:
            time.sleep(0.5)  # the gateway logs a socket's counts just after it closes
        counted = _attach_gateway_counts(run, server_log)
    summary = summarize(run.records, run.t0)
    document = results_document(run, summary, {
        "interrupted": interrupted, "spawned_server": bool(args.spawn), "gateway_log_counts": counted,
        "audio_dir": str(args.audio), "started_at": started_at,
    })
    write_results(out_dir, document)
    plot = write_plot(out_dir, run)
    print_summary(console, summary, out_dir)
    console.print(f"plot: {plot}" if plot else "plot: skipped (matplotlib is not installed)", highlight=False)
    if interrupted:
        return 130
    return 0 if summary["calls"]["failed"] == 0 else 1
