"""SOAP notes written at hang-up: the schema that is stored and the model-driven generator."""

from iasovoice.notes.schema import SoapNote, SoapSections, TranscriptTurn, write_json_schema
from iasovoice.notes.soap import NOT_DOCUMENTED, build_note_messages, generate_note, parse_soap_text

__all__ = [
    "NOT_DOCUMENTED",
    "SoapNote",
    "SoapSections",
    "TranscriptTurn",
    "build_note_messages",
    "generate_note",
    "parse_soap_text",
    "write_json_schema",
]
