"""The seed test's `initiate_outbound_call`, through IasoVoice's real outbound-call code.

Amazon Connect cannot be reached from here, so the `connect` client is a real boto3 client behind
botocore's Stubber: the request is validated against the service model, and the answer is the
contact id Connect would return (a fresh UUID, as Connect's ContactId is).
"""

from __future__ import annotations

import os
import uuid

import boto3
from botocore.stub import Stubber

from iasovoice.aws.outbound import place_outbound_call
from iasovoice.aws.settings import ConnectSettings

INSTANCE_ID = "7c1b5a3e-2d4f-4e8a-9b6c-0123456789ab"
FLOW_ID = "3f2e1d0c-b9a8-4765-8432-10fedcba9876"


def stubbed_outbound_call(phone_number: str, patient_id: str) -> str:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    settings = ConnectSettings(instance_id=INSTANCE_ID, contact_flow_id=FLOW_ID, source_phone_number="+15550009999")
    client = boto3.client("connect", region_name=settings.region)
    contact_id = str(uuid.uuid4())
    expected = {
        "DestinationPhoneNumber": phone_number,
        "ContactFlowId": FLOW_ID,
        "InstanceId": INSTANCE_ID,
        "SourcePhoneNumber": "+15550009999",
        "Attributes": {"PatientId": patient_id, "CallType": "ScheduledCheckIn"},
    }
    with Stubber(client) as stubber:
        stubber.add_response("start_outbound_voice_contact", {"ContactId": contact_id}, expected)
        returned = place_outbound_call(client, settings, phone_number, patient_id)
        stubber.assert_no_pending_responses()
    return returned
