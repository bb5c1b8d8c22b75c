"""Amazon Connect Lambda: look the caller up in the patients table by phone number.

Invoked by the "IasoVoice Medical Assistant" flow (InvokeLambdaFunction, ResponseValidation
STRING_MAP). Connect only accepts a FLAT map of strings, and an exception sends the caller down
the flow's error branch, so every path, including malformed events and DynamoDB failures,
returns the same five string keys:

    PatientId      patient id found for the number, "" when none
    PatientFound   "true" | "false"
    Authenticated  "true" only when already authenticated earlier in this contact (the
                   authentication flow hands the contact back to the main flow, which calls this
                   Lambda again) or when TRUST_CALLER_ID=true; caller id alone can be spoofed,
                   so by default the caller still has to enter a date of birth
    CallType       the CallType contact attribute (outbound calls set it) or "Inbound"
    Outcome        found | unknown_number | malformed_number | no_contact_data |
                   already_authenticated | patient_mismatch | lookup_error

Environment: PATIENTS_TABLE (DynamoDB table, partition key PhoneNumber in E.164),
TRUST_CALLER_ID ("false"). Only boto3 and the standard library are used (the Lambda runtime).
Phone numbers are PHI: they are never logged; logs carry the contact id and the outcome only.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(logging.INFO)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SEPARATORS = re.compile(r"[\s().\-]")
_TABLES: dict[tuple[str, str], Any] = {}


def lambda_handler(event: Any, context: Any) -> dict[str, str]:
    """Entry point configured as `patient_lookup.lambda_handler`."""
    contact = _contact_data(event)
    if contact is None:
        return _respond("unknown", "no_contact_data")
    contact_id = str(contact.get("ContactId") or "unknown")
    attributes = contact.get("Attributes") if isinstance(contact.get("Attributes"), dict) else {}
    call_type = str(attributes.get("CallType") or "Inbound")

    if attributes.get("Authenticated") == "true" and attributes.get("PatientId"):
        return _respond(
            contact_id, "already_authenticated", str(attributes["PatientId"]), True, True, call_type
        )

    endpoint = contact.get("CustomerEndpoint")
    number = normalize_e164(endpoint.get("Address") if isinstance(endpoint, dict) else None)
    if number is None:
        return _respond(contact_id, "malformed_number", call_type=call_type)

    try:
        item = _table().get_item(Key={"PhoneNumber": number}).get("Item")
    except (BotoCoreError, ClientError) as exc:
        LOGGER.error("patient lookup failed contact=%s error=%s", contact_id, type(exc).__name__)
        return _respond(contact_id, "lookup_error", call_type=call_type)
    if not item or not item.get("PatientId"):
        return _respond(contact_id, "unknown_number", call_type=call_type)

    patient_id = str(item["PatientId"])
    expected = attributes.get("PatientId")
    if expected and str(expected) != patient_id:
        # An outbound call was placed for another patient than the one on file for this number.
        return _respond(contact_id, "patient_mismatch", call_type=call_type)
    trusted = os.environ.get("TRUST_CALLER_ID", "false").lower() == "true"
    return _respond(contact_id, "found", patient_id, True, trusted, call_type)


def normalize_e164(raw: Any) -> str | None:
    """`+1 (555) 010-2030` → `+15550102030`; None when it is not an E.164 number."""
    if not isinstance(raw, str):
        return None
    candidate = _SEPARATORS.sub("", raw.strip())
    return candidate if E164.match(candidate) else None


def _contact_data(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    details = event.get("Details")
    contact = details.get("ContactData") if isinstance(details, dict) else None
    return contact if isinstance(contact, dict) else None


def _table() -> Any:
    name = os.environ.get("PATIENTS_TABLE", "iasovoice-patients")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    key = (name, region)
    if key not in _TABLES:  # reused across warm invocations
        _TABLES[key] = boto3.resource("dynamodb", region_name=region).Table(name)
    return _TABLES[key]


def _respond(
    contact_id: str,
    outcome: str,
    patient_id: str = "",
    found: bool = False,
    authenticated: bool = False,
    call_type: str = "Inbound",
) -> dict[str, str]:
    LOGGER.info("patient lookup contact=%s outcome=%s", contact_id, outcome)
    return {
        "PatientId": patient_id,
        "PatientFound": "true" if found else "false",
        "Authenticated": "true" if authenticated else "false",
        "CallType": call_type,
        "Outcome": outcome,
    }
