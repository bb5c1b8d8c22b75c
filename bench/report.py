"""Where bench figures go: a rich table on the console, `bench/results/<name>.json`, and the summary
`docs/performance_results.json` (committed: the figures docs/performance.md quotes) plus PNG plots."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SUMMARY = ROOT / "docs" / "performance_results.json"
IMAGES = ROOT / "docs" / "img"
console = Console()


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release()}


def table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    out = Table(title=title)
    for column in columns:
        out.add_column(column, justify="right")
    for row in rows:
        out.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(out)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


_smoke_run = False


def smoke_run(enabled: bool) -> None:
    """A --quick run is a smoke test, not figures: it must not overwrite what docs/ quotes."""
    global _smoke_run
    _smoke_run = enabled


def save(name: str, data: dict[str, Any]) -> Path:
    """Write one bench's figures and fold them into the committed summary (other benches kept)."""
    data = {"bench": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **data}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    if _smoke_run:
        console.print(f"[dim]wrote {path.relative_to(ROOT)} (smoke run: docs/ left as it is)[/dim]")
        return path
    summary: dict[str, Any] = {}
    if SUMMARY.exists():
        try:
            summary = json.loads(SUMMARY.read_text())
        except json.JSONDecodeError:
            summary = {}
    summary[name] = data
    SUMMARY.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"[dim]wrote {path.relative_to(ROOT)} and {SUMMARY.relative_to(ROOT)}[/dim]")
    return path


def plot_path(name: str) -> Path:
    folder = RESULTS if _smoke_run else IMAGES
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"
