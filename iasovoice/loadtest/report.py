"""The end of a load test: a summary table on the console, `results.json` and `loadtest.png`.

results.json holds the run's settings, the summary and every call with every reply (timings only: no
transcript text, no note content), so runs can be compared or re-plotted later.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from iasovoice import __version__
from iasovoice.loadtest.metrics import concurrency_timeline, voice_to_voice
from iasovoice.loadtest.runner import LoadRun

RESULTS_NAME = "results.json"
PLOT_NAME = "loadtest.png"


def results_document(run: LoadRun, summary: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    s = run.settings
    return {
        "tool": f"iasovoice loadtest {__version__}",
        "run": {
            "run_id": s.run_id,
            "url": s.url,
            "calls": s.calls,
            "ramp_s": s.ramp_s,
            "duration_s": s.duration_s,
            "reply_quiet_s": s.reply_quiet_s,
            "reply_timeout_s": s.reply_timeout_s,
            "note_timeout_s": s.note_timeout_s,
            "sample_rate": run.pool.sample_rate,
            "audio_turns": [t.source for t in run.pool.turns],
            "wall_s": round((run.finished_at or run.t0) - run.t0, 3),
            "aborted_calls": run.aborted,
            **(extra or {}),
        },
        "summary": summary,
        "concurrency": concurrency_timeline(run.records, run.t0),
        "calls": [r.to_dict(run.t0) for r in run.records],
    }


def write_results(out_dir: Path, document: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_NAME
    path.write_text(json.dumps(document, indent=2))
    return path


def write_plot(out_dir: Path, run: LoadRun) -> Path | None:
    """Latency CDF; concurrency over time with each turn's latency where it happened. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    latencies = sorted(voice_to_voice(run.records))
    greetings = sorted(r.latency_s for c in run.records for r in c.replies
                       if r.kind == "greeting" and r.latency_s is not None)
    fig, (cdf, load) = plt.subplots(1, 2, figsize=(13, 4.8))
    for values, label, style in ((latencies, "voice-to-voice (end of caller speech → first reply audio)", "-"),
                                 (greetings, "greeting (connect → first audio)", "--")):
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            cdf.step(values, ys, where="post", linestyle=style, label=f"{label}, n={len(values)}")
    cdf.set_xlabel("latency (s)")
    cdf.set_ylabel("fraction of replies")
    cdf.set_ylim(0, 1.02)
    cdf.grid(alpha=0.3)
    cdf.legend(loc="lower right", fontsize=8)
    cdf.set_title("Latency CDF")

    for talking, label, style in ((False, "sockets open (incl. note wait)", ":"), (True, "talking", "-")):
        timeline = concurrency_timeline(run.records, run.t0, talking=talking)
        load.step([t for t, _ in timeline], [n for _, n in timeline], where="post", color="tab:blue",
                  linestyle=style, label=label)
    load.legend(loc="upper left", fontsize=8)
    load.set_xlabel("time since start (s)")
    load.set_ylabel("concurrent calls", color="tab:blue")
    load.grid(alpha=0.3)
    points = [(r.first_audio_at - run.t0, r.latency_s) for c in run.records for r in c.turn_replies
              if r.first_audio_at is not None and r.latency_s is not None]
    if points:
        twin = load.twinx()
        twin.scatter([p[0] for p in points], [p[1] for p in points], s=10, color="tab:orange", alpha=0.7)
        twin.set_ylabel("voice-to-voice latency (s)", color="tab:orange")
        twin.set_ylim(0, max(p[1] for p in points) * 1.15)
    load.set_title("Concurrency and latency over time")
    fig.suptitle(f"iasovoice loadtest: {run.settings.calls} calls, ramp {run.settings.ramp_s:g} s, "
                 f"~{run.settings.duration_s:g} s each")
    fig.tight_layout()
    path = out_dir / PLOT_NAME
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_summary(console: Console, summary: dict[str, Any], out_dir: Path) -> None:
    calls, frames, audio = summary["calls"], summary["frames"], summary["audio"]
    table = Table(title="Load test summary", title_justify="left")
    table.add_column("measure")
    for column in ("count", "p50", "p95", "p99", "max"):
        table.add_column(column, justify="right")
    for label, key, fmt in (("connect (ms)", "connect_s", _ms),
                            ("greeting latency (ms)", "greeting_latency_s", _ms),
                            ("voice-to-voice (ms)", "voice_to_voice_s", _ms)):
        d = summary[key]
        table.add_row(label, str(d["count"]), fmt(d["p50"]), fmt(d["p95"]), fmt(d["p99"]), fmt(d["max"]))
    note = summary["notes"]["time_to_note_s"]
    table.add_row("hang-up → note (s)", str(note["count"]), _s(note["p50"]), _s(note["p95"]), _s(note["p99"]),
                  _s(note["max"]))
    console.print(table)

    lost_in = "n/a (no gateway log)" if frames["lost_in"] is None else str(frames["lost_in"])
    lost_out = "n/a (no gateway log)" if frames["lost_out"] is None else str(frames["lost_out"])
    turns, notes, errors, gen = summary["turns"], summary["notes"], summary["errors"], summary["load_generator"]
    lines = [
        (f"calls: {calls['total']} total, {calls['connected']} connected, {calls['ok']} ok, "
         f"{calls['failed']} failed; peak concurrent {calls['peak_talking']} talking, "
         f"{calls['peak_concurrent']} sockets open"),
        f"turns: {turns['total']} spoken, {turns['answered']} answered, {turns['timed_out']} without reply",
        (f"caller frames: {frames['sent']} sent, {frames['send_failures']} send failures, "
         f"{lost_in} lost at the gateway"),
        (f"agent audio: {audio['agent_frames']} frames received, {lost_out} lost; underruns {audio['underruns']} "
         f"in {audio['replies_with_underruns']}/{audio['replies']} replies "
         f"(worst {audio['max_late_s'] * 1000:.0f} ms late)"),
        f"notes: {notes['available']} available, {notes['missing']} missing",
        (f"errors: {errors['calls_with_errors']} calls with errors, "
         f"{errors['server_error_messages']} server error messages"),
        (f"load generator: {gen['late_sends']} frames sent > 20 ms late "
         f"(max lag {gen['max_send_lag_s'] * 1000:.0f} ms)"),
    ]
    for line in lines:
        console.print(line, highlight=False)
    for first in errors["first"]:
        console.print(f"  [red]error[/] {first}", highlight=False)
    console.print(f"results: {out_dir / RESULTS_NAME}", highlight=False)
