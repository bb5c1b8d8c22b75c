"""Write a SOAP note from a call transcript with a chat model, and turn its text into a ``SoapNote``.

Small models write better notes as plain text under four headings than as JSON, and copy any field
descriptions a prompt shows them (MODELS.md), so the prompt describes the task in prose and code
parses the headings. The call is between an AI telephone assistant and a patient: nobody examined
the patient, so the prompt forbids invented findings and the Objective section may only carry
values the caller reported.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from iasovoice.engines.llm.base import ChatMessage, LLMEngine
from iasovoice.notes.schema import SoapNote, SoapSections, TranscriptTurn

NOT_DOCUMENTED = "Not documented in this call."
SECTIONS = ("subjective", "objective", "assessment", "plan")
_SPEAKERS = {"agent": "AI assistant", "caller": "Patient"}

SYSTEM_PROMPT = (
    "You are a clinical documentation assistant. You are given the transcript of a telephone call "
    "between an AI assistant working for a medical practice and a patient. Write a concise SOAP note "
    "for the clinician who will review the call.\n\n"
    "Write plain text under these four headings, in this order, each on its own line: SUBJECTIVE, "
    "OBJECTIVE, ASSESSMENT, PLAN. Do not use JSON or tables.\n\n"
    "Rules:\n"
    "- Use only what was said in the call. Never invent symptoms, history, medications, "
    "measurements or examination findings.\n"
    "- This was a phone call, so no examination took place. Under OBJECTIVE, give only measurements "
    "the patient reported (such as a home blood pressure or temperature reading, stated as "
    "patient-reported), or state that no measurements or examination were available.\n"
    "- The AI assistant does not diagnose. Under ASSESSMENT, summarise the concern and its urgency "
    "as they appear from the call.\n"
    "- Under PLAN, give what was agreed or advised on the call and any follow-up for the clinician.\n"
    "- If something was not discussed, say so briefly instead of guessing."
)


# About 4,000 tokens: with the note's own budget this fits the default 8,192-token context.
MAX_TRANSCRIPT_CHARS = 16_000
_OMITTED = "[… the middle of a long call is omitted here; the full transcript is stored with the note …]"


def format_transcript(transcript: list[TranscriptTurn], max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    """Render turns as ``Speaker: text`` lines, the form the prompt and the models handle best.

    A call too long for the model's context keeps its opening (who called, why) and its end (what was
    agreed) rather than failing to produce any note at all.
    """
    text = "\n".join(
        f"{_SPEAKERS[turn.role]}: {turn.text.strip()}" for turn in transcript if turn.text.strip()
    )
    if len(text) <= max_chars:
        return text
    head = max_chars // 4
    tail = max_chars - head - len(_OMITTED)
    return f"{text[:head]}\n{_OMITTED}\n{text[-tail:]}"


def build_note_messages(
    transcript: list[TranscriptTurn],
    patient_context: dict[str, str] | None = None,
    dialogue_slots: dict[str, Any] | None = None,
) -> list[ChatMessage]:
    """The chat messages that ask a model for a SOAP note of ``transcript``."""
    parts: list[str] = []
    if patient_context:
        context = "\n".join(f"- {key}: {value}" for key, value in patient_context.items())
        parts.append(f"Patient details on file (not said on the call):\n{context}")
    if dialogue_slots:
        recorded = "\n".join(f"- {key}: {value}" for key, value in sorted(dialogue_slots.items()))
        parts.append(f"Details the clinic's dialogue system recorded from the call:\n{recorded}")
    parts.append(f"Call transcript:\n{format_transcript(transcript)}")
    parts.append("Write the SOAP note.")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


# A heading line: optional bullet/number/outline letter, optional markdown (#, **, __), the section
# name (word, "Assessment and Plan", or its single letter), optional "(S)"-style gloss, a separator,
# and possibly the first line of the section's text.
_HEADING = re.compile(
    r"""^\s*
    (?:[-*+•]\s+|\d{1,2}[.)]\s*|(?:[A-D]|[IVX]{1,4})[.)]\s+)?
    (?:\#{1,6}\s*)?
    [*_]{0,3}\s*
    (?P<name>subjective|objective|assessment\s*(?:and|&|/)\s*plan|assessment|plan|[soap])
    (?:\s*\([^)]{0,40}\))?
    \s*[*_]{0,3}\s*
    (?P<sep>[:\-–—.]?)
    \s*[*_]{0,3}\s*
    (?P<rest>.*?)\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LETTERS = {"s": "subjective", "o": "objective", "a": "assessment", "p": "plan"}
_FLUFF = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|```\w*)\s*$")


def _heading(line: str) -> tuple[tuple[str, ...], str] | None:
    """The sections a heading line opens and the text after it, or None for an ordinary line."""
    match = _HEADING.match(line)
    if not match:
        return None
    name, sep, rest = match["name"].lower(), match["sep"], match["rest"]
    if len(name) == 1:
        # "S:" or a bare "## S"; never the first letter of a sentence ("A 45-year-old ...").
        if not (sep in {":", "-", "–", "—"} or (not sep and not rest)):
            return None
        return (_LETTERS[name],), rest
    if not sep and rest:
        return None  # "Plan to call back tomorrow" is a sentence, not a heading
    if name.startswith("assessment") and name.endswith("plan") and name != "plan":
        return ("assessment", "plan"), rest
    return (name,), rest


def parse_soap_text(text: str) -> SoapSections:
    """Split a model's plain-text note into the four sections.

    Tolerates markdown headings (``## S``, ``**Subjective:**``), any case, numbering, a combined
    "Assessment and Plan" (its text goes to both), a preamble before the first heading (dropped) and
    repeated headings (joined). A section the model left out reads "Not documented in this call.".
    """
    collected: dict[str, list[str]] = {name: [] for name in SECTIONS}
    current: tuple[str, ...] = ()
    for line in text.splitlines():
        if _FLUFF.match(line):
            continue
        heading = _heading(line)
        if heading is not None:
            current, rest = heading
            line = rest
        for name in current:
            collected[name].append(line.rstrip())
    values = {}
    for name in SECTIONS:
        body = "\n".join(collected[name]).strip()
        values[name] = body or NOT_DOCUMENTED
    return SoapSections(**values)


def _empty_call_sections() -> SoapSections:
    return SoapSections(
        subjective="The caller said nothing during the call.",
        objective="No measurements or examination were available (telephone call).",
        assessment=NOT_DOCUMENTED,
        plan=NOT_DOCUMENTED,
    )


async def generate_note(
    engine: LLMEngine,
    call_id: str,
    transcript: list[TranscriptTurn],
    *,
    model_name: str,
    max_tokens: int,
    temperature: float,
    patient_context: dict[str, str] | None = None,
    flags: list[str] | None = None,
    dialogue_slots: dict[str, Any] | None = None,
) -> SoapNote:
    """Ask ``engine`` for a note of ``transcript`` and return it validated.

    When the caller said nothing there is nothing to summarise, so no model call is made (and a
    model cannot invent a visit out of silence).
    """
    started = time.perf_counter()
    if not any(turn.role == "caller" and turn.text.strip() for turn in transcript):
        sections = _empty_call_sections()
    else:
        text = await engine.complete(
            build_note_messages(transcript, patient_context, dialogue_slots),
            max_tokens=max_tokens,
            temperature=temperature,
        )
        sections = parse_soap_text(text)
    return SoapNote(
        call_id=call_id,
        created_at=datetime.now(UTC),
        sections=sections,
        transcript=list(transcript),
        model=model_name,
        generation_s=time.perf_counter() - started,
        flags=list(flags or []),
        dialogue_slots=dict(dialogue_slots or {}),
    )
