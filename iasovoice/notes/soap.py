"""Write a SOAP note from a call transcript with a chat model, and turn its text into a ``SoapNote``.

Small models write better notes as plain text under four headings than as JSON, and copy any field
descriptions a prompt shows them (MODELS.md), so the prompt (configs/app.yaml, `llm.note_system_prompt`)
describes the task in prose and code finds the headings. A section the model left out is asked for again
once (`llm.note_repair_prompt`); one still missing after that is never filled with a stock phrase that
reads like a finding: it says the model wrote nothing, the note is flagged `note_section_missing:<name>`
and keeps the model's own answers for the reviewer.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iasovoice.engines.llm.base import ChatMessage, LLMEngine
from iasovoice.engines.llm.provenance import ModelProvenance
from iasovoice.notes.schema import SoapNote, SoapSections, TranscriptTurn

NOT_DOCUMENTED = "Not documented in this call."
SECTION_MISSING = "The note model wrote nothing under this heading; read the transcript."
SECTIONS = ("subjective", "objective", "assessment", "plan")
_SPEAKERS = {"agent": "AI assistant", "caller": "Patient"}
REPAIRED_FLAG = "note_repaired"
CHUNKED_FLAG = "note_from_chunk_summaries"
CHUNK_SUMMARY_MAX_TOKENS = 200
MISSING_FLAG = "note_section_missing"


@dataclass(frozen=True)
class NotePrompts:
    """The note's instructions, from configs/app.yaml (`llm.note_system_prompt`, `_repair_prompt`, `_chunk_prompt`).

    ``repair`` holds ``{missing}``, the headings the first answer lacked. ``version`` goes into every
    note, so a note can be traced to the words its model was given.
    """

    system: str
    repair: str
    chunk: str  # summarises one part of a call too long for one prompt

    @property
    def version(self) -> str:
        return hashlib.sha256(f"{self.system}\0{self.repair}\0{self.chunk}".encode()).hexdigest()[:12]


# About 4,000 tokens: with the note's own budget this fits the default 8,192-token context.
MAX_TRANSCRIPT_CHARS = 16_000
_OMITTED = "[… the middle of a long call is omitted here; the full transcript is stored with the note …]"


def _line(turn: TranscriptTurn) -> str:
    return f"{_SPEAKERS[turn.role]}: {turn.text.strip()}"


def format_transcript(transcript: list[TranscriptTurn], max_chars: int = MAX_TRANSCRIPT_CHARS) -> str:
    """Render turns as ``Speaker: text`` lines, the form the prompt and the models handle best.

    Long calls are cut into chunks before this (`split_long_call`); a single turn longer than the
    context (a stuck microphone) still keeps its start and end rather than failing the note.
    """
    text = "\n".join(_line(turn) for turn in transcript if turn.text.strip())
    if len(text) <= max_chars:
        return text
    head = max_chars // 4
    tail = max_chars - head - len(_OMITTED)
    return f"{text[:head]}\n{_OMITTED}\n{text[-tail:]}"


def split_long_call(
    transcript: list[TranscriptTurn], max_chars: int = MAX_TRANSCRIPT_CHARS
) -> tuple[list[list[TranscriptTurn]], list[TranscriptTurn]]:
    """The earlier parts of a call too long for one prompt, in chunks to summarise, and its end verbatim.

    A call that fits gives no chunks. Otherwise the end (what was agreed) keeps up to half the budget
    word for word and everything before it is cut at turn boundaries into chunks of half the budget,
    so no part of the call is dropped unread.
    """
    spoken = [turn for turn in transcript if turn.text.strip()]
    if sum(len(_line(turn)) + 1 for turn in spoken) <= max_chars:
        return [], spoken
    budget = max_chars // 2
    kept = 0
    used = 0
    for turn in reversed(spoken):
        size = len(_line(turn)) + 1
        if kept and used + size > budget:
            break
        kept += 1
        used += size
    chunks: list[list[TranscriptTurn]] = []
    used = 0
    for turn in spoken[: len(spoken) - kept]:
        size = len(_line(turn)) + 1
        if not chunks or (chunks[-1] and used + size > budget):
            chunks.append([])
            used = 0
        chunks[-1].append(turn)
        used += size
    return chunks, spoken[len(spoken) - kept:]


def build_note_messages(
    transcript: list[TranscriptTurn],
    system_prompt: str,
    patient_context: dict[str, str] | None = None,
    dialogue_slots: dict[str, Any] | None = None,
    earlier_summaries: list[str] | None = None,
) -> list[ChatMessage]:
    """The chat messages that ask a model for a SOAP note of ``transcript``.

    ``earlier_summaries``: for a long call, the summaries of its earlier parts, in order; then
    ``transcript`` is the call's end.
    """
    parts: list[str] = []
    if patient_context:
        context = "\n".join(f"- {key}: {value}" for key, value in patient_context.items())
        parts.append(f"Patient details on file (not said on the call):\n{context}")
    if dialogue_slots:
        recorded = "\n".join(f"- {key}: {value}" for key, value in sorted(dialogue_slots.items()))
        parts.append(f"Details the clinic's dialogue system recorded from the call:\n{recorded}")
    if earlier_summaries:
        summaries = "\n".join(f"- Part {index}: {text.strip()}" for index, text in enumerate(earlier_summaries, 1))
        parts.append(f"Summaries of the earlier parts of this long call, in order:\n{summaries}")
        parts.append(f"The end of the call transcript:\n{format_transcript(transcript)}")
    else:
        parts.append(f"Call transcript:\n{format_transcript(transcript)}")
    parts.append("Write the SOAP note.")
    return [
        {"role": "system", "content": system_prompt},
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


def split_sections(text: str) -> dict[str, str]:
    """The sections a model's plain-text note has, by name; one it left out (or left empty) is absent.

    Tolerates markdown headings (``## S``, ``**Subjective:**``), any case, numbering, a combined
    "Assessment and Plan" (its text goes to both), a preamble before the first heading (dropped) and
    repeated headings (joined).
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
    bodies = {name: "\n".join(lines).strip() for name, lines in collected.items()}
    return {name: body for name, body in bodies.items() if body}


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
    model: ModelProvenance,
    prompts: NotePrompts,
    max_tokens: int,
    temperature: float,
    patient_context: dict[str, str] | None = None,
    flags: list[str] | None = None,
    dialogue_slots: dict[str, Any] | None = None,
) -> SoapNote:
    """Ask ``engine`` for a note of ``transcript`` and return it validated, never silently emptied.

    When the caller said nothing there is nothing to summarise, so no model call is made (and a
    model cannot invent a visit out of silence).
    """
    started = time.perf_counter()
    note_flags = list(flags or [])
    answers: list[str] = []
    if not any(turn.role == "caller" and turn.text.strip() for turn in transcript):
        sections = _empty_call_sections()
    else:
        chunks, end = split_long_call(transcript)
        summaries = [
            await engine.complete(
                [{"role": "system", "content": prompts.chunk}, {"role": "user", "content": format_transcript(chunk)}],
                max_tokens=CHUNK_SUMMARY_MAX_TOKENS, temperature=0.0,
            )
            for chunk in chunks
        ]
        if summaries:
            note_flags.append(CHUNKED_FLAG)
        messages = build_note_messages(end, prompts.system, patient_context, dialogue_slots, summaries)
        answers.append(await engine.complete(messages, max_tokens=max_tokens, temperature=temperature))
        found = split_sections(answers[0])
        missing = [name for name in SECTIONS if name not in found]
        if missing:
            note_flags.append(REPAIRED_FLAG)
            repair = prompts.repair.format(missing=", ".join(name.upper() for name in missing))
            follow_up: list[ChatMessage] = [
                *messages, {"role": "assistant", "content": answers[0]}, {"role": "user", "content": repair}
            ]
            answers.append(await engine.complete(follow_up, max_tokens=max_tokens, temperature=0.0))
            # What the first answer had stays; the repair fills what it lacked.
            found = {**split_sections(answers[1]), **found}
            missing = [name for name in SECTIONS if name not in found]
            note_flags += [f"{MISSING_FLAG}:{name}" for name in missing]
        sections = SoapSections(**{name: found.get(name, SECTION_MISSING) for name in SECTIONS})
        if not missing:
            answers = []  # every section was found: the sections are the model's answer
    return SoapNote(
        call_id=call_id,
        created_at=datetime.now(UTC),
        sections=sections,
        transcript=list(transcript),
        model=model.name,
        model_sha256=model.sha256,
        prompt_version=prompts.version,
        generation_s=time.perf_counter() - started,
        flags=note_flags,
        call_attributes=dict(patient_context or {}),
        dialogue_slots=dict(dialogue_slots or {}),
        unparsed_model_output=answers,
    )
