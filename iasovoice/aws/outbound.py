"""Place an outbound IasoVoice call: `connect.start_outbound_voice_contact` with clear errors.

The Connect client is passed in (a boto3 `connect` client) so tests drive it with botocore's
Stubber on the real service model, and so the CLI decides credentials and Region.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from iasovoice.aws.settings import ConnectSettings
from iasovoice.errors import IasoVoiceError

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "LimitExceededException"})
CALL_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class OutboundCallError(IasoVoiceError):
    """An outbound call could not be placed; `retryable` says whether trying later can help."""

    def __init__(self, message: str, retryable: bool = False, code: str | None = None) -> None:
        self.retryable = retryable
        self.code = code
        super().__init__(message)


def validate_e164(phone_number: str) -> str:
    """Return the number if it is E.164 (`+` then 7 to 15 digits); raise OutboundCallError otherwise.

    Connect rejects other formats anyway, but only after a round trip and with a message that
    does not say which format it wanted.
    """
    candidate = phone_number.strip() if isinstance(phone_number, str) else ""
    if not E164.match(candidate):
        raise OutboundCallError(
            "phone number must be in E.164 format: '+', country code and number, digits only "
            "(for example +15550102030)"
        )
    return candidate


def missing_settings(settings: ConnectSettings) -> list[str]:
    """Config keys an outbound call needs that are unset or still a shipped placeholder."""
    placeholders = set(settings.placeholder_fields())
    missing = [
        f"connect.{name}"
        for name in ("instance_id", "contact_flow_id")
        if not getattr(settings, name) or name in placeholders
    ]
    has_source = settings.source_phone_number and "source_phone_number" not in placeholders
    if not has_source and not settings.queue_id:
        missing.append("connect.source_phone_number or connect.queue_id")
    return missing


def place_outbound_call(
    client: Any,
    settings: ConnectSettings,
    phone_number: str,
    patient_id: str,
    call_type: str = "ScheduledCheckIn",
) -> str:
    """Start an outbound call that runs the IasoVoice flow and return the new contact id.

    `PatientId` and `CallType` travel as contact attributes; the flow's lookup Lambda checks that
    the number on file belongs to that patient before the agent says anything about them.
    """
    number = validate_e164(phone_number)
    if not patient_id or not patient_id.strip():
        raise OutboundCallError("patient id is required (--patient ID)")
    if not CALL_TYPE.match(call_type):
        raise OutboundCallError(f"call type {call_type!r} must be a word like ScheduledCheckIn")
    missing = missing_settings(settings)
    if missing:
        raise OutboundCallError(
            f"cannot place a call: set {', '.join(missing)} in configs/app.yaml "
            "(see docs/connect-setup.md, step 'Outbound calls')"
        )

    request: dict[str, Any] = {
        "DestinationPhoneNumber": number,
        "ContactFlowId": settings.contact_flow_id,
        "InstanceId": settings.instance_id,
        "Attributes": {"PatientId": patient_id.strip(), "CallType": call_type},
    }
    if settings.source_phone_number and "source_phone_number" not in settings.placeholder_fields():
        request["SourcePhoneNumber"] = settings.source_phone_number
    if settings.queue_id:
        request["QueueId"] = settings.queue_id

    try:
        response = client.start_outbound_voice_contact(**request)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in THROTTLING_CODES:
            raise OutboundCallError(
                f"Amazon Connect is throttling outbound calls ({code}); try again in a minute, "
                "or ask AWS to raise the instance's concurrent/outbound call quota",
                retryable=True,
                code=code,
            ) from exc
        raise OutboundCallError(f"Amazon Connect refused the call ({code}): {message}", code=code) from exc
    except NoCredentialsError as exc:
        raise OutboundCallError(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for "
            "an identity allowed connect:StartOutboundVoiceContact"
        ) from exc
    except ParamValidationError as exc:
        raise OutboundCallError(f"invalid request for StartOutboundVoiceContact: {exc}") from exc
    except BotoCoreError as exc:
        raise OutboundCallError(f"could not reach Amazon Connect: {exc}", retryable=True) from exc
    return str(response["ContactId"])
