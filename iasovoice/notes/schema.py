"""The stored SOAP note: what a clinician reads after the call, and what the EHR integration ingests.

The note is built by code from the model's plain-text sections (small models copy JSON field
descriptions into their answers), so this schema is the only place its shape is defined. It is
versioned so stored notes stay readable when the shape changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TranscriptTurn(BaseModel):
    """One utterance: the AI agent's or the caller's, as the call recorded it."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["agent", "caller"]
    text: str
    utterance_id: str
    start_s: float | None = None
    end_s: float | None = None


class SoapSections(BaseModel):
    """The four sections; each must say something (one the model left out says so, and the note is flagged)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subjective: str = Field(min_length=1)
    objective: str = Field(min_length=1)
    assessment: str = Field(min_length=1)
    plan: str = Field(min_length=1)


class SoapNote(BaseModel):
    """A SOAP note for one call, with the transcript it was written from and how it was made."""

    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(min_length=1)
    created_at: datetime
    sections: SoapSections
    transcript: list[TranscriptTurn]
    model: str = Field(description="The model that wrote the note, by its real name (not a config alias).")
    model_sha256: str | None = Field(
        None, description="sha256 of the model's weights file (a directory: of its manifest); null: not on disk."
    )
    prompt_version: str | None = Field(
        None, description="Digest of the note prompts (configs/app.yaml llm.note_*): which instructions it had."
    )
    generation_s: float = Field(ge=0)
    # 2 added model_sha256, prompt_version, call_attributes, unparsed_model_output; version 1 reads as it was.
    schema_version: Literal[1, 2] = 2
    flags: list[str] = Field(default_factory=list)
    unparsed_model_output: list[str] = Field(
        default_factory=list,
        description=(
            "The model's own answers, kept only when a section could not be found in them even after a "
            "repair request (flag note_section_missing:<name>), so a reviewer sees what the model wrote."
        ),
    )
    call_attributes: dict[str, str] = Field(
        default_factory=dict,
        description="The call's attributes from its signed token (Connect contact attributes: PatientId, ...), verbatim.",
    )
    dialogue_slots: dict[str, Any] = Field(
        default_factory=dict,
        description="Slots the dialogue engine (Rasa) filled on the call, verbatim: appointment, medication, symptoms.",
    )

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Store UTC only: a naive time is ambiguous across call-centre time zones."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str) -> SoapNote:
        return cls.model_validate_json(data)


def write_json_schema(path: Path | str) -> Path:
    """Write ``SoapNote``'s JSON Schema (docs/soap_note.schema.json) for integrators."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SoapNote.model_json_schema(), indent=2) + "\n", encoding="utf-8")
    return path
