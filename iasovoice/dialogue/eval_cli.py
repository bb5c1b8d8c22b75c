"""`iasovoice eval nlu`: every utterance through the whole dialogue layer (rules + Rasa), scored.

It talks to the Rasa a call would use: a running one at `dialogue.rasa.url`, or one it trains (when
the data changed) and starts itself, then stops. Rasa's story tests run against the same model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from iasovoice.config import AppConfig, resolve_path
from iasovoice.dialogue import safety_rules
from iasovoice.dialogue.evaluation import Prediction, Report, load_examples, predict, score
from iasovoice.dialogue.rasa_client import RasaClient
from iasovoice.dialogue.rasa_server import RasaService, ensure_model, http_json, run_rasa_command

DEFAULT_SPLIT = "tests/nlu"  # under dialogue.rasa.project_dir: the held-out split, never trained on
TARGETS = {"macro_f1": 0.90, "emergency_recall": 0.98, "false_escalation_rate": 0.02}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    evaluate = sub.add_parser("eval", help="evaluate the dialogue layer (nlu)")
    kinds = evaluate.add_subparsers(dest="eval_kind", required=True)
    nlu = kinds.add_parser("nlu", help="intents, entities and emergency recall of rules + Rasa on a data set")
    nlu.add_argument("--data", type=Path, help="CSV (text,intent) or Rasa NLU YAML file/dir "
                     "(default: the held-out split rasa/tests/nlu)")
    nlu.add_argument("--out", type=Path, default=Path("out/nlu_predictions.jsonl"), help="one JSON line per utterance")
    nlu.add_argument("--no-stories", action="store_true", help="skip Rasa's story tests")
    nlu.add_argument("--concurrency", type=int, default=4)
    nlu.set_defaults(handler=cmd_eval_nlu)


def cmd_eval_nlu(args: argparse.Namespace, config: AppConfig) -> int:
    rasa_config = config.dialogue.rasa
    project = resolve_path(rasa_config.project_dir)
    data = args.data or project / DEFAULT_SPLIT
    examples = load_examples(data)
    print(f"{len(examples)} utterances from {data}", flush=True)
    service: RasaService | None = None
    token = os.environ.get(rasa_config.auth_token_env) if rasa_config.auth_token_env else None
    if http_json(f"{rasa_config.url}/status", 2.0, token) is None:
        if not rasa_config.manage:
            print(f"iasovoice: no Rasa answers at {rasa_config.url} (dialogue.rasa.url)", file=sys.stderr)
            return 2
        service = RasaService(rasa_config, progress=lambda m: print(f"… {m}", flush=True))
        service.start()
        service.wait_ready()
    else:
        print(f"… using the Rasa already running at {rasa_config.url}", flush=True)
    try:
        predictions = asyncio.run(_predict_all(config, examples, token, args.concurrency))
    finally:
        if service is not None:
            service.stop()
    report = score(predictions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(p.as_json(), ensure_ascii=False) + "\n" for p in predictions)
    print_report(report)
    print(f"\nper-utterance predictions: {args.out}")
    if not args.no_stories:
        _story_tests(config)
    return 0


async def _predict_all(
    config: AppConfig, examples: list, token: str | None, concurrency: int
) -> list[Prediction]:
    from rich.progress import Progress

    client = RasaClient(config.dialogue.rasa.model_copy(update={"timeout_s": 30.0}), token)
    limit = asyncio.Semaphore(max(1, concurrency))
    threshold = config.dialogue.rasa.escalate_confidence
    results: list[Prediction | None] = [None] * len(examples)
    with Progress(transient=True) as progress:
        task = progress.add_task("rules + Rasa", total=len(examples))

        async def one(index: int) -> None:
            example = examples[index]
            async with limit:
                parse = await client.parse(example.text)
            results[index] = predict(example, safety_rules.detect(example.text), parse, threshold)
            progress.advance(task)

        try:
            await asyncio.gather(*(one(i) for i in range(len(examples))))
        finally:
            await client.close()
    return [r for r in results if r is not None]


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Intents (rules + Rasa, as a call acts on them)")
    for column in ("intent", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "intent" else "right")
    for intent, s in report.intents.items():
        table.add_row(intent, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(table)

    def verdict(ok: bool) -> str:
        return "[green]meets target[/green]" if ok else "[red]below target[/red]"

    console.print(f"macro F1 {report.macro_f1:.3f} (target ≥ {TARGETS['macro_f1']}) "
                  f"{verdict(report.macro_f1 >= TARGETS['macro_f1'])}; accuracy {report.accuracy:.3f}")
    console.print(f"entity P {report.entity_precision:.3f} R {report.entity_recall:.3f} F1 {report.entity_f1:.3f}")
    console.print(
        f"emergency recall {report.emergency_recall:.3f} on {report.emergency_support} emergency/self-harm "
        f"utterances (target ≥ {TARGETS['emergency_recall']}) "
        f"{verdict(report.emergency_recall >= TARGETS['emergency_recall'])}"
    )
    console.print(
        f"false escalations {report.false_escalation_rate:.3%} of {report.non_emergency_support} other "
        f"utterances (target ≤ {TARGETS['false_escalation_rate']:.0%}) "
        f"{verdict(report.false_escalation_rate <= TARGETS['false_escalation_rate'])}"
    )
    for title, items in (("missed emergencies", report.missed), ("false alarms", report.false_alarms)):
        for p in items:
            console.print(f"  {title}: {p.example.text!r} (Rasa: {p.rasa_intent} {p.rasa_confidence:.2f})",
                          markup=False, highlight=False)


def _story_tests(config: AppConfig) -> None:
    rasa_config = config.dialogue.rasa
    model = ensure_model(rasa_config, lambda m: print(f"… {m}", flush=True))
    out_dir = resolve_path(rasa_config.log_dir) / "story-tests"
    print("… running Rasa's story tests (rasa test core)", flush=True)
    code = run_rasa_command(
        rasa_config,
        ["test", "core", "--model", str(model), "--stories", "tests/test_stories.yml", "--out", str(out_dir),
         "--no-plot"],
        out_dir / "rasa-test-core.log",
    )
    summary = story_summary(out_dir, resolve_path(rasa_config.project_dir) / "tests" / "test_stories.yml")
    if code != 0 or summary is None:
        print(f"story tests did not run (exit {code}); see {out_dir / 'rasa-test-core.log'}")
        return
    print(f"Rasa story tests: {summary}")


def story_summary(out_dir: Path, stories_file: Path) -> str | None:
    """'N of M stories correct; action accuracy X' from `rasa test core`'s report files."""
    report_file = out_dir / "story_report.json"
    if not report_file.is_file():
        return None
    report = json.loads(report_file.read_text())
    accuracy = report.get("accuracy") or report.get("weighted avg", {}).get("f1-score")
    failed_file = out_dir / "failed_test_stories.yml"
    failed = failed_file.read_text().count("- story:") if failed_file.is_file() else 0
    total = stories_file.read_text().count("- story:") if stories_file.is_file() else None
    counted = f"{total - failed} of {total} stories correct" if total is not None else f"{failed} failed"
    return f"{counted}; action accuracy {accuracy:.3f}" if isinstance(accuracy, float) else counted
