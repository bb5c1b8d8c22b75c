"""SOAP notes written at hang-up: the schema that is stored and the model-driven generator."""

from iasovoice.notes.schema import SoapNote, SoapSections, TranscriptTurn, write_json_schema
from iasovoice.notes.soap import (
    CHUNKED_FLAG,
    MISSING_FLAG,
    NOT_DOCUMENTED,
    REPAIRED_FLAG,
    SECTION_MISSING,
    NotePrompts,
    build_note_messages,
    format_transcript,
    generate_note,
    split_long_call,
    split_sections,
)

__all__ = [
    "CHUNKED_FLAG",
    "MISSING_FLAG",
    "NOT_DOCUMENTED",
    "REPAIRED_FLAG",
    "SECTION_MISSING",
    "NotePrompts",
    "SoapNote",
    "SoapSections",
    "TranscriptTurn",
    "build_note_messages",
    "format_transcript",
    "generate_note",
    "split_long_call",
    "split_sections",
    "write_json_schema",
]
