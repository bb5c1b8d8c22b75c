"""Tell the Amazon Connect flow to hand a call to a person: the `IasoEscalation` contact attribute.

When IasoVoice escalates a call (an emergency, a caller talking of self-harm, a caller asking for
staff) it speaks its fixed safety script and sends `{"type": "transfer", ...}` on its websocket, but
only the contact flow can move a Connect call. So IasoVoice also sets two user-defined contact
attributes through Connect's `UpdateContactAttributes` API, and the "IasoVoice Medical Assistant"
flow checks `$.Attributes.IasoEscalation` every time its agent-turn loop regains control
(`contact_flows/iasovoice_medical_assistant.json`, `contact_flows/README.md`):

* `emergency` -> transfer to `connect.emergency_transfer_number` (the clinic's nurse triage line),
* `crisis`    -> transfer to `connect.crisis_transfer_number` (in the US, the 988 Lifeline),
* `staff`     -> transfer to the clinic queue `connect.staff_queue_arn`.

`IasoEscalationReason` is a short machine reason from a fixed list, never PHI: no transcript
text, symptoms, names or numbers go into contact attributes, which Connect keeps for 24 months.

No Ray, no config: the boto3 `connect` client is passed in (tests put botocore's Stubber in front
of a real one), and the caller decides credentials, Region and retries (`EscalationError.retryable`).
The caller's identity needs `connect:UpdateContactAttributes` on the instance's contacts
(`arn:aws:connect:REGION:ACCOUNT:instance/INSTANCE_ID/contact/*`, docs/connect-setup.md).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from iasovoice.errors import IasoVoiceError

logger = logging.getLogger(__name__)

# The attribute names and values the contact flow's Compare actions check. Changing one here
# means changing the flow template too (tests/test_contact_flows.py checks they agree).
ESCALATION_ATTRIBUTE: Final = "IasoEscalation"
REASON_ATTRIBUTE: Final = "IasoEscalationReason"

EMERGENCY: Final = "emergency"
CRISIS: Final = "crisis"
STAFF: Final = "staff"
ESCALATION_KINDS: Final[tuple[str, ...]] = (EMERGENCY, CRISIS, STAFF)

# One fixed machine reason per kind: a reason is chosen from this table, never written from what
# the caller said, so it can never carry PHI into the contact record.
ESCALATION_REASONS: Final[dict[str, str]] = {
    EMERGENCY: "emergency_red_flag",
    CRISIS: "self_harm_red_flag",
    STAFF: "staff_requested",
}

# Connect contact ids and instance ids are UUIDs. Checking the shape up front also guarantees that
# what this module logs as a contact id can never be a caller's phone number.
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PLACEHOLDER_INSTANCE = "00000000-0000-0000-0000-000000000000"
RETRYABLE_CODES: Final = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "LimitExceededException", "InternalServiceException"}
)


class EscalationError(IasoVoiceError):
    """The escalation attribute could not be set; the call is NOT transferred by the flow.

    `code` is the AWS error code when Connect answered (e.g. `ResourceNotFoundException`), and
    `retryable` says whether trying again can help. Messages never contain PHI: no phone number,
    no transcript text, and not Connect's own error message (which may echo request values).
    """

    def __init__(self, message: str, code: str | None = None, retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


def escalation_attributes(kind: str) -> dict[str, str]:
    """The flat string map of contact attributes for one escalation kind.

    >>> escalation_attributes("crisis")
    {'IasoEscalation': 'crisis', 'IasoEscalationReason': 'self_harm_red_flag'}
    """
    if not isinstance(kind, str) or kind not in ESCALATION_REASONS:
        raise EscalationError(
            f"unknown escalation kind {kind!r}: must be one of {', '.join(ESCALATION_KINDS)}"
        )
    return {ESCALATION_ATTRIBUTE: kind, REASON_ATTRIBUTE: ESCALATION_REASONS[kind]}


def set_escalation(client: Any, instance_id: str, contact_id: str, kind: str) -> None:
    """Set `IasoEscalation`/`IasoEscalationReason` on a live contact so its flow transfers the call.

    `client` is a boto3 `connect` client; `contact_id` is the contact's *initial* contact id (the
    `ContactId` the IasoVoice call is named by, unless the contact was transferred before it
    reached IasoVoice, then `InitialContactId`). Raises EscalationError (with `.code` and
    `.retryable`) when the kind or an id is invalid or Connect refuses the update.
    """
    attributes = escalation_attributes(kind)
    if not isinstance(instance_id, str) or not _UUID.match(instance_id):
        raise EscalationError(
            "connect.instance_id must be the Amazon Connect instance id (a UUID, the end of the instance ARN)"
        )
    if instance_id == _PLACEHOLDER_INSTANCE:
        raise EscalationError(
            "connect.instance_id still holds the shipped placeholder; set it in configs/app.yaml "
            "(docs/connect-setup.md, step 2)"
        )
    if not isinstance(contact_id, str) or not _UUID.match(contact_id):
        # The value is not echoed: whatever was passed instead of a contact id may be PHI.
        raise EscalationError("contact id must be an Amazon Connect contact id (a UUID)")

    try:
        client.update_contact_attributes(
            InitialContactId=contact_id, InstanceId=instance_id, Attributes=attributes
        )
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "ClientError")
        hint = {
            "ResourceNotFoundException": (
                "no such contact in this instance: check connect.instance_id and that the id is the "
                "contact's initial contact id"
            ),
            "AccessDeniedException": (
                "this identity lacks connect:UpdateContactAttributes on "
                "arn:aws:connect:REGION:ACCOUNT:instance/INSTANCE_ID/contact/*"
            ),
        }.get(code, "retry later" if code in RETRYABLE_CODES else "see the AWS error code")
        logger.warning("escalation %s NOT set on contact %s: Connect answered %s", kind, contact_id, code)
        raise EscalationError(
            f"Amazon Connect refused UpdateContactAttributes ({code}) for escalation {kind!r}: {hint}; "
            "the contact flow will not transfer this call",
            code=code,
            retryable=code in RETRYABLE_CODES,
        ) from exc
    except NoCredentialsError as exc:
        raise EscalationError(
            "no AWS credentials found for UpdateContactAttributes: give this process an identity "
            "allowed connect:UpdateContactAttributes (docs/connect-setup.md)"
        ) from exc
    except ParamValidationError as exc:
        # botocore's text may quote request values, so it is not repeated here.
        raise EscalationError(
            "invalid request for UpdateContactAttributes (rejected by botocore before sending)"
        ) from exc
    except BotoCoreError as exc:
        raise EscalationError(
            f"could not reach Amazon Connect for UpdateContactAttributes ({type(exc).__name__})",
            retryable=True,
        ) from exc
    logger.info("escalation %s (%s) set on contact %s", kind, attributes[REASON_ATTRIBUTE], contact_id)
