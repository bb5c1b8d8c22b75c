"""`ConnectSettings`: everything the Amazon Connect artefacts need from `configs/app.yaml`.

The lead's CLI reads the `connect:` section of the app config into this model. Defaults are
obvious placeholders (all-zero account ids, `example.org`) so that a rendered flow or a dial
attempt with an unedited config fails loudly instead of reaching a stranger's resources; see
`placeholder_fields()`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

PLACEHOLDER_ACCOUNT = "000000000000"
PLACEHOLDER_UUID = "00000000-0000-0000-0000-000000000000"
_PLACEHOLDER_MARKERS = (PLACEHOLDER_ACCOUNT, PLACEHOLDER_UUID, "example.org", "+15550000000")
_QUEUE_ARN = re.compile(
    r"arn:aws[a-z-]*:connect:[a-z0-9-]+:[0-9]{12}:instance/[0-9a-f-]{36}/queue/[0-9a-f-]{36}"
)


class ConnectSettings(BaseModel):
    """The `connect:` section of `configs/app.yaml` (Amazon Connect, Lambda, DynamoDB)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(
        default="us-east-1",
        description="AWS Region of the Connect instance, the Lambdas and the patients table.",
    )
    instance_id: str = Field(
        default=PLACEHOLDER_UUID,
        description="Amazon Connect instance id (the UUID at the end of the instance ARN).",
    )
    contact_flow_id: str = Field(
        default=PLACEHOLDER_UUID,
        description="Id of the published 'IasoVoice Medical Assistant' flow; outbound calls run it.",
    )
    auth_contact_flow_id: str = Field(
        default=PLACEHOLDER_UUID,
        description="Id of the published 'IasoVoice Patient Authentication' flow (TransferToFlow target).",
    )
    lookup_lambda_arn: str = Field(
        default=f"arn:aws:lambda:us-east-1:{PLACEHOLDER_ACCOUNT}:function:iasovoice-patient-lookup",
        description="ARN of lambda/patient_lookup.py as deployed; the main flow invokes it first.",
    )
    auth_lambda_arn: str = Field(
        default=f"arn:aws:lambda:us-east-1:{PLACEHOLDER_ACCOUNT}:function:iasovoice-patient-auth",
        description="ARN of lambda/patient_auth.py; the authentication flow invokes it with the DTMF input.",
    )
    agent_turn_lambda_arn: str = Field(
        default=f"arn:aws:lambda:us-east-1:{PLACEHOLDER_ACCOUNT}:function:iasovoice-agent-turn",
        description="ARN of the turn Lambda of the audio bridge that returns the agent's next prompt.",
    )
    websocket_url: str = Field(
        default="wss://voice.example.org/connect",
        description="Base URL of the IasoVoice gateway; the bridge connects to {websocket_url}/{ContactId}.",
    )
    patients_table: str = Field(
        default="iasovoice-patients",
        description="DynamoDB table of patients (partition key PhoneNumber, GSI on PatientId).",
    )
    source_phone_number: str = Field(
        default="+15550000000",
        description="E.164 number claimed in Connect that outbound calls show as caller id.",
    )
    queue_id: str | None = Field(
        default=None,
        description="Outbound queue id; Connect needs it or source_phone_number for outbound calls.",
    )
    emergency_transfer_number: str = Field(
        default="+15550000000",
        description=(
            "E.164 number the flow transfers to when IasoEscalation=emergency: a staffed clinical line "
            "such as the clinic's nurse triage line. Not 911: Amazon Connect is not an emergency calling "
            "service (contact_flows/README.md), so the flow also tells the caller to dial 911."
        ),
    )
    crisis_transfer_number: str = Field(
        default="+15550000000",
        description=(
            "E.164 number the flow transfers to when IasoEscalation=crisis (self-harm). In the US, the 988 "
            "Suicide & Crisis Lifeline; check that your instance can dial the number you choose."
        ),
    )
    staff_queue_arn: str = Field(
        default=(
            f"arn:aws:connect:us-east-1:{PLACEHOLDER_ACCOUNT}:instance/{PLACEHOLDER_UUID}"
            f"/queue/{PLACEHOLDER_UUID}"
        ),
        description="ARN of the clinic staff queue the flow transfers to when IasoEscalation=staff.",
    )

    @field_validator("websocket_url")
    @classmethod
    def _secure_websocket(cls, value: str) -> str:
        """Connect audio carries PHI, so only `wss://` is accepted, and the call id is appended later."""
        if not value.startswith("wss://"):
            raise ValueError(f"websocket_url must start with wss:// (got {value!r})")
        return value.rstrip("/")

    @field_validator("source_phone_number", "emergency_transfer_number", "crisis_transfer_number")
    @classmethod
    def _e164(cls, value: str, info: ValidationInfo) -> str:
        if not re.fullmatch(r"\+[1-9]\d{6,14}", value):
            raise ValueError(f"{info.field_name} must be E.164 like +15551234567 (got {value!r})")
        return value

    @field_validator("staff_queue_arn")
    @classmethod
    def _queue_arn(cls, value: str) -> str:
        """The queue's full ARN (as the flow designer exports a Set working queue block), not its id."""
        if not _QUEUE_ARN.fullmatch(value):
            raise ValueError(
                "staff_queue_arn must be a queue ARN like "
                f"arn:aws:connect:REGION:ACCOUNT:instance/INSTANCE_ID/queue/QUEUE_ID (got {value!r})"
            )
        return value

    def placeholder_fields(self) -> list[str]:
        """Names of fields still holding a shipped placeholder: deploying with them cannot work."""
        names: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, str) and any(marker in value for marker in _PLACEHOLDER_MARKERS):
                names.append(name)
        return names
