"""Amazon Connect Lambda: check the date of birth a caller typed against the patients table.

Invoked by the "IasoVoice Patient Authentication" flow with the DTMF input as the
`DateOfBirth` parameter (MMDDYYYY, or "Timeout" when Connect stored no input). The patient is the
one the lookup Lambda found for the caller's number (`PatientId` attribute, when `PatientFound`
is "true"), otherwise the id the caller typed (`ClaimedPatientId` attribute). The patient record
is read through the `PatientIdIndex` global secondary index.

Response (flat map of strings, as Connect requires; never raises):

    Authenticated  "true" | "false"
    PatientId      the verified patient id; unchanged lookup value when not verified
    Attempts       attempts so far in this contact, as a string
    Outcome        authenticated | retry | locked | timeout | error

The flow retries while the outcome is "retry"; after MAX_AUTH_ATTEMPTS (3) failures it is
"locked" and the flow disconnects. Date of birth and patient ids are PHI: only the contact id and
the outcome are logged.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)

INDEX_NAME = "PatientIdIndex"
_TABLES: dict[tuple[str, str], Any] = {}


def lambda_handler(event: Any, context: Any) -> dict[str, str]:
    """Entry point configured as `patient_auth.lambda_handler`."""
    details = event.get("Details") if isinstance(event, dict) else None
    details = details if isinstance(details, dict) else {}
    contact = details.get("ContactData") if isinstance(details.get("ContactData"), dict) else {}
    params = details.get("Parameters") if isinstance(details.get("Parameters"), dict) else {}
    attributes = contact.get("Attributes") if isinstance(contact.get("Attributes"), dict) else {}
    contact_id = str(contact.get("ContactId") or "unknown")

    looked_up = str(attributes.get("PatientId") or "")
    patient_id = looked_up if attributes.get("PatientFound") == "true" else ""
    patient_id = patient_id or str(attributes.get("ClaimedPatientId") or "")
    attempts = _int(attributes.get("AuthAttempts")) + 1
    max_attempts = max(1, _int(os.environ.get("MAX_AUTH_ATTEMPTS"), default=3))

    raw_dob = str(params.get("DateOfBirth") or "").strip()
    if raw_dob in ("", "Timeout"):
        return _respond(contact_id, "timeout", looked_up, attempts - 1)

    entered = parse_dtmf_date(raw_dob)
    if entered is None or not patient_id:
        return _failed(contact_id, looked_up, attempts, max_attempts)

    try:
        record = _patient_record(patient_id)
    except (BotoCoreError, ClientError) as exc:
        LOGGER.error("patient auth failed contact=%s error=%s", contact_id, type(exc).__name__)
        return _respond(contact_id, "error", looked_up, attempts - 1)

    on_file = str((record or {}).get("DateOfBirth") or "")
    if record and hmac.compare_digest(entered.isoformat(), on_file):
        return _respond(contact_id, "authenticated", patient_id, attempts, authenticated=True)
    return _failed(contact_id, looked_up, attempts, max_attempts)


def parse_dtmf_date(digits: str) -> dt.date | None:
    """`MMDDYYYY` keypad digits → date; None for anything else (wrong length, 02/30, ...)."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None


def _patient_record(patient_id: str) -> dict[str, Any] | None:
    response = _table().query(
        IndexName=INDEX_NAME, KeyConditionExpression=Key("PatientId").eq(patient_id), Limit=1
    )
    items = response.get("Items") or []
    return items[0] if items else None


def _failed(contact_id: str, patient_id: str, attempts: int, max_attempts: int) -> dict[str, str]:
    outcome = "locked" if attempts >= max_attempts else "retry"
    return _respond(contact_id, outcome, patient_id, attempts)


def _table() -> Any:
    name = os.environ.get("PATIENTS_TABLE", "iasovoice-patients")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    key = (name, region)
    if key not in _TABLES:
        _TABLES[key] = boto3.resource("dynamodb", region_name=region).Table(name)
    return _TABLES[key]


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _respond(
    contact_id: str, outcome: str, patient_id: str, attempts: int, authenticated: bool = False
) -> dict[str, str]:
    LOGGER.info("patient auth contact=%s outcome=%s attempt=%d", contact_id, outcome, attempts)
    return {
        "Authenticated": "true" if authenticated else "false",
        "PatientId": patient_id,
        "Attempts": str(attempts),
        "Outcome": outcome,
    }
