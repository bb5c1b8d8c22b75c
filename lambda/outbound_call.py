"""Lambda: place an outbound IasoVoice call through Amazon Connect.

For scheduled check-ins (EventBridge Scheduler, a DynamoDB stream, Step Functions) where no
operator runs `iasovoice dial`. It accepts either a direct payload

    {"PhoneNumber": "+15550102030", "PatientId": "P-1001", "CallType": "ScheduledCheckIn"}

or the same keys as `Details.Parameters` of an Amazon Connect flow event, and calls
`connect:StartOutboundVoiceContact` with the "IasoVoice Medical Assistant" flow, passing
`PatientId` and `CallType` as contact attributes (the flow's lookup Lambda reads them).

Environment: CONNECT_INSTANCE_ID, CONTACT_FLOW_ID, and SOURCE_PHONE_NUMBER and/or QUEUE_ID
(Connect needs one of the two). Only boto3 and the standard library (the Lambda runtime); the
logic mirrors iasovoice/aws/outbound.py, which the operator CLI uses.

Always returns a flat map of strings and never raises:
    Outcome    started | invalid_number | invalid_request | missing_config | throttled | error
    ContactId  the new contact id when started, else ""
    Retryable  "true" when trying again later can succeed (throttling)
    Error      short reason, never the phone number
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
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "LimitExceededException"})
_CLIENTS: dict[str, Any] = {}


def lambda_handler(event: Any, context: Any) -> dict[str, str]:
    """Entry point configured as `outbound_call.lambda_handler`."""
    request = _request(event)
    number = str(request.get("PhoneNumber") or "").strip()
    patient_id = str(request.get("PatientId") or "").strip()
    call_type = str(request.get("CallType") or "ScheduledCheckIn").strip()
    if not E164.match(number):
        return _respond("invalid_number", error="PhoneNumber must be E.164, e.g. +15550102030")
    if not patient_id:
        return _respond("invalid_request", error="PatientId is required")

    instance_id = os.environ.get("CONNECT_INSTANCE_ID", "")
    flow_id = os.environ.get("CONTACT_FLOW_ID", "")
    source = os.environ.get("SOURCE_PHONE_NUMBER", "")
    queue = os.environ.get("QUEUE_ID", "")
    missing = [
        name
        for name, value in (("CONNECT_INSTANCE_ID", instance_id), ("CONTACT_FLOW_ID", flow_id))
        if not value
    ]
    if not source and not queue:
        missing.append("SOURCE_PHONE_NUMBER or QUEUE_ID")
    if missing:
        return _respond("missing_config", error=f"set {', '.join(missing)} on the function")

    params: dict[str, Any] = {
        "DestinationPhoneNumber": number,
        "ContactFlowId": flow_id,
        "InstanceId": instance_id,
        "Attributes": {"PatientId": patient_id, "CallType": call_type},
    }
    if source:
        params["SourcePhoneNumber"] = source
    if queue:
        params["QueueId"] = queue
    try:
        contact_id = _client().start_outbound_voice_contact(**params)["ContactId"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        if code in THROTTLING_CODES:
            return _respond("throttled", error=code, retryable=True)
        return _respond("error", error=code)
    except BotoCoreError as exc:
        return _respond("error", error=type(exc).__name__)
    return _respond("started", contact_id=contact_id)


def _request(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {}
    details = event.get("Details")
    if isinstance(details, dict) and isinstance(details.get("Parameters"), dict):
        return details["Parameters"]
    return event


def _client() -> Any:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if region not in _CLIENTS:
        _CLIENTS[region] = boto3.client("connect", region_name=region)
    return _CLIENTS[region]


def _respond(outcome: str, contact_id: str = "", error: str = "", retryable: bool = False) -> dict[str, str]:
    LOGGER.info("outbound call outcome=%s contact=%s", outcome, contact_id or "-")
    return {
        "Outcome": outcome,
        "ContactId": contact_id,
        "Retryable": "true" if retryable else "false",
        "Error": error,
    }
