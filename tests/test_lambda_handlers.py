"""The Connect-invoked Lambda handlers on realistic Connect events, against moto's DynamoDB.

The event documents follow the sample request in the Amazon Connect admin guide ("Invoke AWS
Lambda functions", connect-lambda-functions.html), including the MediaStreams block Connect adds
once "Start media streaming" ran. The handlers live in lambda/ (a directory, not a package:
`lambda` is a Python keyword), so they are loaded by path as the Lambda runtime would.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

LAMBDA_DIR = Path(__file__).resolve().parents[1] / "lambda"
TABLE = "iasovoice-patients-test"
REGION = "us-east-1"
KNOWN_NUMBER = "+15550102030"
KNOWN_PATIENT = "P-1001"
KNOWN_DOB = "1984-03-07"


def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"iasovoice_lambda_{name}", LAMBDA_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


lookup = load_handler("patient_lookup")
auth = load_handler("patient_auth")


def connect_event(
    address: str | None = KNOWN_NUMBER,
    attributes: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    initiation: str = "INBOUND",
) -> dict[str, Any]:
    """A full ContactFlowEvent as Connect sends it to a Lambda."""
    contact_id = "4a573372-1f28-4e26-b97b-6f5d8e3c2a10"
    return {
        "Details": {
            "ContactData": {
                "Attributes": dict(attributes or {}),
                "Channel": "VOICE",
                "ContactId": contact_id,
                "CustomerEndpoint": {"Address": address, "Type": "TELEPHONE_NUMBER"},
                "CustomerId": None,
                "Description": None,
                "InitialContactId": contact_id,
                "InitiationMethod": initiation,
                "InstanceARN": "arn:aws:connect:us-east-1:123456789012:instance/c8c0e68d-2200-4265-82c0-2b2c6c5a1f00",
                "LanguageCode": "en-US",
                "MediaStreams": {
                    "Customer": {
                        "Audio": {
                            "StartFragmentNumber": "91343852333181432392682062622220590765191907586",
                            "StartTimestamp": "1565781909613",
                            "StreamARN": "arn:aws:kinesisvideo:us-east-1:123456789012:stream/connect-contact-a1b2/1565272947806",
                        }
                    }
                },
                "Name": None,
                "PreviousContactId": contact_id,
                "Queue": {
                    "ARN": "arn:aws:connect:us-east-1:123456789012:instance/c8c0e68d-2200-4265-82c0-2b2c6c5a1f00/queue/5cba7cbf-1ecb-4b6d-b8bd-fe91079b3fc8",
                    "Name": "BasicQueue",
                    "OutboundCallerId": {"Address": "+15550009999", "Type": "TELEPHONE_NUMBER"},
                },
                "References": {},
                "SegmentAttributes": {"connect:Subtype": {"ValueString": "connect:Telephony"}},
                "SystemEndpoint": {"Address": "+15550009999", "Type": "TELEPHONE_NUMBER"},
                "Tags": {"aws:connect:instanceId": "c8c0e68d-2200-4265-82c0-2b2c6c5a1f00"},
            },
            "Parameters": dict(parameters or {}),
        },
        "Name": "ContactFlowEvent",
    }


@pytest.fixture()
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "PATIENTS_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("TRUST_CALLER_ID", raising=False)
    lookup._TABLES.clear()
    auth._TABLES.clear()
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        created = dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "PhoneNumber", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "PhoneNumber", "AttributeType": "S"},
                {"AttributeName": "PatientId", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "PatientIdIndex",
                    "KeySchema": [{"AttributeName": "PatientId", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        created.put_item(
            Item={"PhoneNumber": KNOWN_NUMBER, "PatientId": KNOWN_PATIENT, "DateOfBirth": KNOWN_DOB}
        )
        created.put_item(
            Item={"PhoneNumber": "+442071234567", "PatientId": "P-2002", "DateOfBirth": "1950-12-31"}
        )
        yield created
    lookup._TABLES.clear()
    auth._TABLES.clear()


def assert_flat_string_map(response: Any) -> None:
    """What Connect's STRING_MAP validation accepts: a flat object of string values, < 32 KB."""
    assert isinstance(response, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in response.items()), response
    assert len(json.dumps(response).encode()) < 32_000


def own_log_text(caplog: pytest.LogCaptureFixture, module: ModuleType) -> str:
    """What the handler itself logged (boto's own DEBUG logs are not the handler's)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name == module.LOGGER.name)


# ---------------------------------------------------------------- patient lookup


def test_lookup_finds_patient_by_caller_number(table: Any) -> None:
    response = lookup.lambda_handler(connect_event(), None)
    assert_flat_string_map(response)
    assert response == {
        "PatientId": KNOWN_PATIENT,
        "PatientFound": "true",
        "Authenticated": "false",
        "CallType": "Inbound",
        "Outcome": "found",
    }


def test_lookup_normalises_formatted_numbers(table: Any) -> None:
    response = lookup.lambda_handler(connect_event(address="+1 (555) 010-2030"), None)
    assert response["PatientId"] == KNOWN_PATIENT


def test_lookup_trusts_caller_id_only_when_configured(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUST_CALLER_ID", "true")
    assert lookup.lambda_handler(connect_event(), None)["Authenticated"] == "true"


def test_lookup_unknown_number(table: Any) -> None:
    response = lookup.lambda_handler(connect_event(address="+15557654321"), None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "unknown_number"
    assert response["PatientFound"] == "false" and response["PatientId"] == ""


@pytest.mark.parametrize(
    "address", ["anonymous", "5550102030", "+0123", "", None, "+1555abc0000", 15550102030]
)
def test_lookup_malformed_number(table: Any, address: Any) -> None:
    response = lookup.lambda_handler(connect_event(address=address), None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "malformed_number"


@pytest.mark.parametrize(
    "event",
    [
        {},
        None,
        "not an event",
        {"Details": {}},
        {"Details": {"ContactData": "oops"}},
        {"Name": "ContactFlowEvent", "Details": {"Parameters": {}}},
    ],
)
def test_lookup_without_contact_data_returns_flat_response(table: Any, event: Any) -> None:
    response = lookup.lambda_handler(event, None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "no_contact_data"


def test_lookup_missing_customer_endpoint(table: Any) -> None:
    event = connect_event()
    event["Details"]["ContactData"]["CustomerEndpoint"] = None
    assert lookup.lambda_handler(event, None)["Outcome"] == "malformed_number"


def test_lookup_keeps_authentication_from_the_auth_flow(table: Any) -> None:
    event = connect_event(address="+15557654321", attributes={"Authenticated": "true", "PatientId": "P-2002"})
    response = lookup.lambda_handler(event, None)
    assert response["Outcome"] == "already_authenticated"
    assert response["Authenticated"] == "true" and response["PatientId"] == "P-2002"


def test_lookup_outbound_call_attributes(table: Any) -> None:
    attrs = {"PatientId": KNOWN_PATIENT, "CallType": "ScheduledCheckIn"}
    response = lookup.lambda_handler(connect_event(attributes=attrs, initiation="API"), None)
    assert response["CallType"] == "ScheduledCheckIn" and response["Outcome"] == "found"
    mismatch = lookup.lambda_handler(connect_event(attributes={"PatientId": "P-9999"}), None)
    assert mismatch["Outcome"] == "patient_mismatch" and mismatch["PatientFound"] == "false"


def test_lookup_dynamodb_failure_is_a_flat_response(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENTS_TABLE", "no-such-table")
    response = lookup.lambda_handler(connect_event(), None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "lookup_error"


def test_lookup_logs_no_phone_number(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=lookup.LOGGER.name)
    lookup.lambda_handler(connect_event(), None)
    lookup.lambda_handler(connect_event(address="+15557654321"), None)
    text = own_log_text(caplog, lookup)
    assert "4a573372-1f28-4e26-b97b-6f5d8e3c2a10" in text
    assert "5550102030" not in text and "5557654321" not in text


# ---------------------------------------------------------------- patient authentication


def auth_event(dob: str, **attributes: str) -> dict[str, Any]:
    return connect_event(attributes=attributes, parameters={"DateOfBirth": dob})


def test_auth_accepts_correct_date_of_birth_for_known_caller(table: Any) -> None:
    response = auth.lambda_handler(auth_event("03071984", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    assert_flat_string_map(response)
    assert response == {
        "Authenticated": "true",
        "PatientId": KNOWN_PATIENT,
        "Attempts": "1",
        "Outcome": "authenticated",
    }


def test_auth_with_patient_id_typed_by_an_unknown_caller(table: Any) -> None:
    event = auth_event("12311950", PatientId="", PatientFound="false", ClaimedPatientId="P-2002")
    response = auth.lambda_handler(event, None)
    assert response["Outcome"] == "authenticated" and response["PatientId"] == "P-2002"


def test_auth_wrong_date_retries_then_locks(table: Any) -> None:
    first = auth.lambda_handler(auth_event("01011990", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    assert first == {
        "Authenticated": "false",
        "PatientId": KNOWN_PATIENT,
        "Attempts": "1",
        "Outcome": "retry",
    }
    third = auth.lambda_handler(
        auth_event("01011990", PatientId=KNOWN_PATIENT, PatientFound="true", AuthAttempts="2"), None
    )
    assert third["Outcome"] == "locked" and third["Authenticated"] == "false" and third["Attempts"] == "3"


@pytest.mark.parametrize("dob", ["0307198", "1984-03-07", "02301984", "13011984", "abcdefgh"])
def test_auth_malformed_date_is_a_failed_attempt(table: Any, dob: str) -> None:
    response = auth.lambda_handler(auth_event(dob, PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "retry" and response["Authenticated"] == "false"


def test_auth_claimed_id_of_another_patient_fails(table: Any) -> None:
    event = auth_event("03071984", PatientFound="false", ClaimedPatientId="P-2002")
    assert auth.lambda_handler(event, None)["Authenticated"] == "false"


def test_auth_unknown_patient_id_fails(table: Any) -> None:
    event = auth_event("03071984", PatientFound="false", ClaimedPatientId="P-0000")
    assert auth.lambda_handler(event, None)["Outcome"] == "retry"


def test_auth_timeout_is_reported_without_counting(table: Any) -> None:
    response = auth.lambda_handler(auth_event("Timeout", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    assert response["Outcome"] == "timeout" and response["Attempts"] == "0"


@pytest.mark.parametrize("event", [{}, None, {"Details": {"ContactData": None, "Parameters": None}}])
def test_auth_bad_events_return_flat_response(table: Any, event: Any) -> None:
    response = auth.lambda_handler(event, None)
    assert_flat_string_map(response)
    assert response["Authenticated"] == "false"


def test_auth_dynamodb_failure(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENTS_TABLE", "no-such-table")
    response = auth.lambda_handler(auth_event("03071984", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    assert_flat_string_map(response)
    assert response["Outcome"] == "error" and response["Authenticated"] == "false"


def test_auth_logs_no_date_of_birth(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=auth.LOGGER.name)
    auth.lambda_handler(auth_event("03071984", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    auth.lambda_handler(auth_event("01011990", PatientId=KNOWN_PATIENT, PatientFound="true"), None)
    text = own_log_text(caplog, auth)
    assert "outcome=authenticated" in text
    for secret in ("03071984", "1984", "01011990", KNOWN_NUMBER):
        assert secret not in text


def test_handlers_import_only_boto3_and_stdlib() -> None:
    allowed_third_party = {"boto3", "botocore"}
    for path in LAMBDA_DIR.glob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from"):
                top = words[1].split(".")[0]
                assert top in allowed_third_party or top in sys.stdlib_module_names or top == "__future__", (
                    path.name,
                    line,
                )


def test_events_are_not_mutated(table: Any) -> None:
    event = connect_event()
    before = copy.deepcopy(event)
    lookup.lambda_handler(event, None)
    assert event == before
