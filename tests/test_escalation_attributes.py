"""The `IasoEscalation` contact attribute: `iasovoice.aws.escalation` on botocore's Stubber.

Amazon Connect cannot be reached from here (no network, no AWS account), so every test puts
botocore's Stubber in front of a real `boto3.client("connect", region_name="us-east-1")`: each
request is validated against Connect's published service model (parameter names, types and
lengths of UpdateContactAttributes) before it is matched against the exact expected parameters,
and Connect's answers, errors included, are the ones the service model defines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from iasovoice.aws.escalation import (
    CRISIS,
    EMERGENCY,
    ESCALATION_ATTRIBUTE,
    ESCALATION_KINDS,
    REASON_ATTRIBUTE,
    STAFF,
    EscalationError,
    escalation_attributes,
    set_escalation,
)
from iasovoice.errors import IasoVoiceError

INSTANCE_ID = "6b9a4c3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d"
CONTACT_ID = "a1b2c3d4-1111-4222-8333-444455556666"
CALLER_NUMBER = "+15550102030"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture()
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("connect", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expected_params(kind: str, reason: str) -> dict[str, Any]:
    return {
        "InitialContactId": CONTACT_ID,
        "InstanceId": INSTANCE_ID,
        "Attributes": {"IasoEscalation": kind, "IasoEscalationReason": reason},
    }


def test_attribute_names_and_values_are_the_ones_the_flow_checks() -> None:
    assert (ESCALATION_ATTRIBUTE, REASON_ATTRIBUTE) == ("IasoEscalation", "IasoEscalationReason")
    assert ESCALATION_KINDS == (EMERGENCY, CRISIS, STAFF) == ("emergency", "crisis", "staff")
    for kind in ESCALATION_KINDS:
        attributes = escalation_attributes(kind)
        assert set(attributes) == {"IasoEscalation", "IasoEscalationReason"}
        assert attributes["IasoEscalation"] == kind
        # A flat map of short machine words: nothing a caller said can end up here.
        assert all(isinstance(v, str) and v.replace("_", "").isalpha() for v in attributes.values())


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("emergency", "emergency_red_flag"), ("crisis", "self_harm_red_flag"), ("staff", "staff_requested")],
)
def test_sets_the_attributes_with_the_exact_documented_parameters(
    stubbed: tuple[Any, Stubber], kind: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed
    stubber.add_response("update_contact_attributes", {}, expected_params(kind, reason))
    with caplog.at_level(logging.DEBUG, logger="iasovoice.aws.escalation"):
        assert set_escalation(client, INSTANCE_ID, CONTACT_ID, kind) is None
    assert CONTACT_ID in caplog.text and kind in caplog.text


def test_resource_not_found_becomes_a_clear_error_with_the_aws_code(
    stubbed: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "update_contact_attributes",
        service_error_code="ResourceNotFoundException",
        service_message=f"Contact not found for caller {CALLER_NUMBER}",
        http_status_code=404,
        expected_params=expected_params("emergency", "emergency_red_flag"),
    )
    with (
        caplog.at_level(logging.DEBUG, logger="iasovoice.aws.escalation"),
        pytest.raises(EscalationError) as raised,
    ):
        set_escalation(client, INSTANCE_ID, CONTACT_ID, "emergency")
    error = raised.value
    assert isinstance(error, IasoVoiceError)
    assert error.code == "ResourceNotFoundException"
    assert error.retryable is False
    message = str(error)
    assert "ResourceNotFoundException" in message and "UpdateContactAttributes" in message
    assert "will not transfer" in message
    # Connect's own message is not repeated: it may echo request values (PHI).
    assert CALLER_NUMBER not in message and CALLER_NUMBER not in caplog.text


def test_throttling_is_reported_as_retryable(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "update_contact_attributes",
        service_error_code="ThrottlingException",
        http_status_code=429,
        expected_params=expected_params("crisis", "self_harm_red_flag"),
    )
    with pytest.raises(EscalationError) as raised:
        set_escalation(client, INSTANCE_ID, CONTACT_ID, "crisis")
    assert raised.value.code == "ThrottlingException" and raised.value.retryable is True


@pytest.mark.parametrize("kind", ["", "Emergency", "self_harm", "transfer", None, 3])
def test_invalid_kind_is_rejected_before_any_request(stubbed: tuple[Any, Stubber], kind: Any) -> None:
    client, _ = stubbed  # no response queued: any request would fail the Stubber
    with pytest.raises(EscalationError, match="emergency, crisis, staff"):
        set_escalation(client, INSTANCE_ID, CONTACT_ID, kind)
    with pytest.raises(EscalationError, match="unknown escalation kind"):
        escalation_attributes(kind)


def test_a_phone_number_passed_as_contact_id_is_rejected_and_never_echoed(
    stubbed: tuple[Any, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = stubbed
    with (
        caplog.at_level(logging.DEBUG, logger="iasovoice.aws.escalation"),
        pytest.raises(EscalationError, match="contact id") as raised,
    ):
        set_escalation(client, INSTANCE_ID, CALLER_NUMBER, "emergency")
    assert CALLER_NUMBER not in str(raised.value) and CALLER_NUMBER not in caplog.text


@pytest.mark.parametrize(
    ("instance_id", "expected"),
    [("00000000-0000-0000-0000-000000000000", "placeholder"), ("my-instance", "instance_id")],
)
def test_placeholder_or_malformed_instance_id_is_refused(
    stubbed: tuple[Any, Stubber], instance_id: str, expected: str
) -> None:
    client, _ = stubbed
    with pytest.raises(EscalationError, match=expected):
        set_escalation(client, instance_id, CONTACT_ID, "staff")
