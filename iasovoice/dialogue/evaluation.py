"""Scoring the dialogue layer the way a call uses it: intents, entities and the escalation decision.

Pure functions (no Rasa, no I/O beyond reading a data file), so the arithmetic is unit-tested and the
same code scores a live Rasa through `iasovoice eval nlu`.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from iasovoice.dialogue.turn import ESCALATING_INTENTS
from iasovoice.errors import IasoVoiceError

# Rasa's inline entity markup: [text](entity) or [text]{"entity": "name", ...}.
_MARKUP = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<name>[^)]+)\)|(?P<json>\{[^}]*\}))")


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: frozenset[tuple[str, str]] = frozenset()  # (entity, surface text)


@dataclass(frozen=True)
class Prediction:
    example: Example
    intent: str
    entities: frozenset[tuple[str, str]]
    escalation: str | None  # emergency | crisis | None: what a call would do
    rule_category: str | None = None
    rasa_intent: str | None = None
    rasa_confidence: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.example.text,
            "expected_intent": self.example.intent,
            "intent": self.intent,
            "emergency": self.escalation is not None,
            "escalation": self.escalation,
            "rule_category": self.rule_category,
            "rasa_intent": self.rasa_intent,
            "rasa_confidence": round(self.rasa_confidence, 4),
            "entities": sorted([list(e) for e in self.entities]),
            "expected_entities": sorted([list(e) for e in self.example.entities]),
        }


class DataError(IasoVoiceError):
    """An evaluation file could not be read; the message names the file and the problem."""


def strip_markup(annotated: str) -> tuple[str, frozenset[tuple[str, str]]]:
    """`i have [chest](body_part) pain` -> ("i have chest pain", {("body_part", "chest")})."""
    entities: set[tuple[str, str]] = set()

    def replace(match: re.Match[str]) -> str:
        text = match.group("text")
        name = match.group("name")
        if name is None:
            import json

            name = str(json.loads(match.group("json")).get("entity", ""))
        if name:
            entities.add((name.strip(), text.strip().lower()))
        return text

    return _MARKUP.sub(replace, annotated).strip(), frozenset(entities)


def load_rasa_nlu(path: Path) -> list[Example]:
    """Examples from a Rasa NLU YAML file, or every such file under a directory."""
    files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    examples: list[Example] = []
    for file in files:
        try:
            document = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as error:
            raise DataError(f"{file}: not valid YAML: {error}") from None
        for block in document.get("nlu") or []:
            intent = block.get("intent")
            if not intent:
                continue
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    text, entities = strip_markup(line[2:])
                    if text:
                        examples.append(Example(text, str(intent), entities))
    if not examples:
        raise DataError(f"{path}: no `nlu:` intent examples found")
    return examples


def load_csv(path: Path) -> list[Example]:
    """Examples from a CSV with columns `text,intent` (entities may be given in Rasa markup in text)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "intent"} <= set(reader.fieldnames):
            raise DataError(f"{path}: a CSV needs the columns text,intent (found {reader.fieldnames})")
        examples = []
        for row in reader:
            text, entities = strip_markup(row["text"] or "")
            if text and row["intent"]:
                examples.append(Example(text, row["intent"].strip(), entities))
    if not examples:
        raise DataError(f"{path}: no rows")
    return examples


def load_examples(path: Path) -> list[Example]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    return load_csv(path) if path.suffix.lower() == ".csv" else load_rasa_nlu(path)


def is_escalating(intent: str) -> bool:
    return intent in ESCALATING_INTENTS


@dataclass
class IntentScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    intents: dict[str, IntentScore]
    macro_f1: float
    accuracy: float
    entity_precision: float
    entity_recall: float
    entity_f1: float
    emergency_recall: float
    emergency_support: int
    false_escalation_rate: float
    non_emergency_support: int
    missed: list[Prediction] = field(default_factory=list)
    false_alarms: list[Prediction] = field(default_factory=list)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score(predictions: Iterable[Prediction]) -> Report:
    """Per-intent P/R/F1 (macro over the intents in the data), entity F1, and escalation figures."""
    preds = list(predictions)
    gold = Counter(p.example.intent for p in preds)
    predicted = Counter(p.intent for p in preds)
    correct = Counter(p.intent for p in preds if p.intent == p.example.intent)
    intents: dict[str, IntentScore] = {}
    for intent in sorted(gold):
        precision = correct[intent] / predicted[intent] if predicted[intent] else 0.0
        recall = correct[intent] / gold[intent]
        intents[intent] = IntentScore(precision, recall, _f1(precision, recall), gold[intent])
    true_entities = sum(len(p.entities & p.example.entities) for p in preds)
    predicted_entities = sum(len(p.entities) for p in preds)
    gold_entities = sum(len(p.example.entities) for p in preds)
    entity_precision = true_entities / predicted_entities if predicted_entities else 0.0
    entity_recall = true_entities / gold_entities if gold_entities else 0.0
    emergencies = [p for p in preds if is_escalating(p.example.intent)]
    others = [p for p in preds if not is_escalating(p.example.intent)]
    missed = [p for p in emergencies if p.escalation is None]
    false_alarms = [p for p in others if p.escalation is not None]
    return Report(
        intents=intents,
        macro_f1=sum(s.f1 for s in intents.values()) / len(intents) if intents else 0.0,
        accuracy=sum(correct.values()) / len(preds) if preds else 0.0,
        entity_precision=entity_precision,
        entity_recall=entity_recall,
        entity_f1=_f1(entity_precision, entity_recall),
        emergency_recall=1 - len(missed) / len(emergencies) if emergencies else 1.0,
        emergency_support=len(emergencies),
        false_escalation_rate=len(false_alarms) / len(others) if others else 0.0,
        non_emergency_support=len(others),
        missed=missed,
        false_alarms=false_alarms,
    )


INTENT_OF_ESCALATION = {kind: intent for intent, kind in ESCALATING_INTENTS.items()}


def predict(example: Example, rule_hit: Any, parse: dict[str, Any] | None, threshold: float) -> Prediction:
    """What a call does with `example`: the rules' hit and Rasa's parse, combined as the session does.

    Either layer escalates; crisis outranks emergency. The intent a call acts on is Rasa's, except
    that an escalation the rules made turns it into the escalating intent.
    """
    from iasovoice.dialogue.turn import entities_from, escalation_from_ranking

    parse = parse or {}
    intent_info = parse.get("intent") or {}
    rasa_intent = intent_info.get("name")
    ranking = parse.get("intent_ranking") or ([intent_info] if intent_info else [])
    rasa_kind, _ = escalation_from_ranking(ranking, threshold)
    kinds = {k for k in (rasa_kind, getattr(rule_hit, "kind", None)) if k}
    escalation = "crisis" if "crisis" in kinds else ("emergency" if kinds else None)
    intent = str(rasa_intent or "nlu_fallback")
    if escalation is not None and ESCALATING_INTENTS.get(intent) != escalation:
        intent = INTENT_OF_ESCALATION[escalation]
    text = parse.get("text") or example.text
    entities = frozenset(
        (e.entity, (text[e.start:e.end] if e.start is not None and e.end is not None else e.value).strip().lower())
        for e in entities_from(parse)
    )
    return Prediction(
        example=example,
        intent=intent,
        entities=entities,
        escalation=escalation,
        rule_category=getattr(rule_hit, "category", None),
        rasa_intent=rasa_intent,
        rasa_confidence=float(intent_info.get("confidence") or 0.0),
    )
