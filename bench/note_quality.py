"""Score generated SOAP notes against ACI-Bench reference notes (ROUGE-Lsum, the benchmark's metric).

Usage: python bench/note_quality.py --n 5 --out bench/results/note_quality.json
ACI-Bench's official score is rouge-score's rougeLsum on newline-split sentences without stemming,
averaged per note. Dialogues are doctor/patient visits, not phone calls, so treat the number as a
direction (the prompt is written for calls), and compare models or prompts on the same N.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import statistics
import time
from pathlib import Path

from rouge_score import rouge_scorer

from iasovoice.config import load_config
from iasovoice.engines.llm import LlamaCppEngine, assemble_packaged_model, default_cache_dir
from iasovoice.engines.llm.provenance import packaged_provenance, weights_provenance
from iasovoice.factory import note_prompts
from iasovoice.notes import TranscriptTurn, generate_note

SECTIONS = ("subjective", "objective", "assessment", "plan")


def load_dialogues(path: Path, n: int) -> list[tuple[str, list[TranscriptTurn], str]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:n]
    out = []
    for row in rows:
        turns = []
        for index, line in enumerate(row["dialogue"].splitlines()):
            match = re.match(r"\[(doctor|patient)\]\s*(.*)", line.strip())
            if match:
                role = "agent" if match[1] == "doctor" else "caller"
                turns.append(TranscriptTurn(role=role, text=match[2], utterance_id=f"u{index}"))
        out.append((row["encounter_id"], turns, row["note"]))
    return out


async def run(args: argparse.Namespace) -> dict:
    model_path = (
        Path(args.model_path)
        if args.model_path
        else assemble_packaged_model(default_cache_dir(), name=args.packaged_model)
    )
    engine = LlamaCppEngine(model_path, n_ctx=args.n_ctx, n_threads=args.threads)
    provenance = (
        weights_provenance(model_path, default_cache_dir())
        if args.model_path
        else packaged_provenance(args.packaged_model)
    )
    llm = load_config(Path(args.config)).llm
    prompts = note_prompts(llm)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=False)
    results = []
    for encounter_id, turns, reference in load_dialogues(Path(args.data), args.n):
        started = time.perf_counter()
        note = await generate_note(
            engine, encounter_id, turns, model=provenance, prompts=prompts, max_tokens=args.max_tokens,
            temperature=0.0,
        )
        text = "\n".join(f"{name.upper()}\n{getattr(note.sections, name)}" for name in SECTIONS)
        scores = scorer.score(reference, text)
        results.append(
            {
                "encounter_id": encounter_id,
                "seconds": round(time.perf_counter() - started, 2),
                **{key: round(value.fmeasure * 100, 2) for key, value in scores.items()},
            }
        )
        print(json.dumps(results[-1]), flush=True)
    summary = {
        key: round(statistics.mean(r[key] for r in results), 2)
        for key in ("rouge1", "rouge2", "rougeLsum", "seconds")
    }
    return {
        "model": provenance.name,
        "prompt_version": prompts.version,
        "n": len(results),
        "max_tokens": args.max_tokens,
        "threads": args.threads,
        "mean": summary,
        "notes": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "data" / "aci-bench" / "valid.csv"))
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "app.yaml"),
                        help="where the note prompts come from (llm.note_*)")
    parser.add_argument("--model-path", default=None, help="a GGUF file; default: the packaged model")
    parser.add_argument("--packaged-model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--max-tokens", type=int, default=700)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench/results/note_quality.json")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["mean"]))


if __name__ == "__main__":
    main()
