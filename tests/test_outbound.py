"""Outbound calls: the Python API, the `dial` command and the outbound Lambda, on botocore's Stubber.

The Stubber sits on a real `connect` client, so every request is validated against Amazon
Connect's published service model before it is matched against the expected parameters.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from iasovoice.aws import commands
from iasovoice.aws.commands import EXIT_FAILED, EXIT_OK, EXIT_RETRY, dial_command, register
from iasovoice.aws.outbound import OutboundCallError, missing_settings, place_outbound_call, validate_e164
from iasovoice.aws.settings import ConnectSettings

CONTACT_ID = "a1b2c3d4-1111-4222-8333-444455556666"
INSTANCE_ID = "6b9a4c3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d"
FLOW_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture()
def settings() -> ConnectSettings:
    return ConnectSettings(
        region="us-east-1",
        instance_id=INSTANCE_ID,
        contact_flow_id=FLOW_ID,
        source_phone_number="+15550009999",
    )


@pytest.fixture()
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("connect", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expected(
    number: str = "+15550102030", patient: str = "P-1001", call_type: str = "ScheduledCheckIn"
) -> dict[str, Any]:
    return {
        "DestinationPhoneNumber": number,
        "ContactFlowId": FLOW_ID,
        "InstanceId": INSTANCE_ID,
        "SourcePhoneNumber": "+15550009999",
        "Attributes": {"PatientId": patient, "CallType": call_type},
    }


def test_places_call_with_the_documented_parameters(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings
) -> None:
    client, stubber = stubbed
    stubber.add_response("start_outbound_voice_contact", {"ContactId": CONTACT_ID}, expected())
    assert place_outbound_call(client, settings, "+15550102030", "P-1001") == CONTACT_ID


def test_queue_id_and_call_type_are_passed(stubbed: tuple[Any, Stubber], settings: ConnectSettings) -> None:
    client, stubber = stubbed
    queued = settings.model_copy(update={"queue_id": "5cba7cbf-1ecb-4b6d-b8bd-fe91079b3fc8"})
    params = dict(expected(call_type="LabResults"), QueueId=queued.queue_id)
    stubber.add_response("start_outbound_voice_contact", {"ContactId": CONTACT_ID}, params)
    assert place_outbound_call(client, queued, "+15550102030", "P-1001", call_type="LabResults") == CONTACT_ID


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "TooManyRequestsException", "LimitExceededException"]
)
def test_throttling_is_a_clear_retryable_error(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings, code: str
) -> None:
    client, stubber = stubbed
    stubber.add_client_error("start_outbound_voice_contact", service_error_code=code, http_status_code=429)
    with pytest.raises(OutboundCallError, match="throttling") as info:
        place_outbound_call(client, settings, "+15550102030", "P-1001")
    assert info.value.retryable and info.value.code == code


def test_other_service_errors_are_not_retryable(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "start_outbound_voice_contact",
        service_error_code="DestinationNotAllowedException",
        service_message="Outbound calls to this country are not allowed",
        http_status_code=403,
    )
    with pytest.raises(OutboundCallError, match="DestinationNotAllowedException.*not allowed") as info:
        place_outbound_call(client, settings, "+15550102030", "P-1001")
    assert not info.value.retryable


def test_request_matches_the_real_service_model(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings
) -> None:
    """botocore validated the request against Connect's model; check it also sends every required member."""
    client, stubber = stubbed
    shape = client.meta.service_model.operation_model("StartOutboundVoiceContact").input_shape
    sent = expected()
    assert set(shape.required_members) <= set(sent) <= set(shape.members)
    assert shape.members["Attributes"].type_name == "map"
    stubber.add_response("start_outbound_voice_contact", {"ContactId": CONTACT_ID}, sent)
    place_outbound_call(client, settings, "+15550102030", "P-1001")
    # The Stubber itself validates responses against the model too: a malformed one is refused.
    with pytest.raises(Exception, match="ContactId"):
        stubber.add_response("start_outbound_voice_contact", {"ContactId": 42})


@pytest.mark.parametrize(
    "number",
    ["5550102030", "+1 555 010 2030", "+0155501020", "+1555", "tel:+15550102030", "", "+1234567890123456"],
)
def test_non_e164_numbers_are_refused_before_any_request(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings, number: str
) -> None:
    client, _ = stubbed
    with pytest.raises(OutboundCallError, match="E.164"):
        place_outbound_call(client, settings, number, "P-1001")


def test_validate_e164_accepts_international_numbers() -> None:
    assert validate_e164("+442071234567") == "+442071234567"
    assert validate_e164(" +15550102030 ") == "+15550102030"


def test_missing_config_is_named(stubbed: tuple[Any, Stubber]) -> None:
    client, _ = stubbed
    with pytest.raises(OutboundCallError) as info:
        place_outbound_call(client, ConnectSettings(), "+15550102030", "P-1001")
    message = str(info.value)
    assert "connect.instance_id" in message and "connect.contact_flow_id" in message
    assert "connect.source_phone_number or connect.queue_id" in message
    assert (
        missing_settings(ConnectSettings(instance_id=INSTANCE_ID, contact_flow_id=FLOW_ID, queue_id="q"))
        == []
    )


def test_patient_id_and_call_type_are_checked(
    stubbed: tuple[Any, Stubber], settings: ConnectSettings
) -> None:
    client, _ = stubbed
    with pytest.raises(OutboundCallError, match="patient id"):
        place_outbound_call(client, settings, "+15550102030", "  ")
    with pytest.raises(OutboundCallError, match="call type"):
        place_outbound_call(client, settings, "+15550102030", "P-1001", call_type="drop table;")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="iasovoice")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_dial_command(stubbed: tuple[Any, Stubber], settings: ConnectSettings, capsys: Any) -> None:
    client, stubber = stubbed
    args = parse(["dial", "+15550102030", "--patient", "P-1001"])
    assert args.aws_handler is dial_command and args.call_type == "ScheduledCheckIn"
    stubber.add_response("start_outbound_voice_contact", {"ContactId": CONTACT_ID}, expected())
    assert args.aws_handler(args, settings, client_factory=lambda s: client) == EXIT_OK
    assert capsys.readouterr().out.strip() == CONTACT_ID

    stubber.add_client_error("start_outbound_voice_contact", service_error_code="ThrottlingException")
    assert dial_command(args, settings, client_factory=lambda s: client) == EXIT_RETRY
    assert "throttling" in capsys.readouterr().err

    bad = parse(["dial", "555-0102", "--patient", "P-1001", "--call-type", "FollowUp"])
    assert dial_command(bad, settings, client_factory=lambda s: client) == EXIT_FAILED
    assert "E.164" in capsys.readouterr().err


def test_dial_without_credentials_says_so(
    settings: ConnectSettings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    real_factory = commands._connect_client

    def guarded(s: ConnectSettings) -> Any:
        client = real_factory(s)

        def no_network(**_: Any) -> None:
            raise AssertionError("a test tried to reach AWS")

        client.meta.events.register("before-send", no_network)
        return client

    monkeypatch.setattr(commands, "_connect_client", guarded)
    args = parse(["dial", "+15550102030", "--patient", "P-1001"])
    assert commands.dial_command(args, settings, client_factory=guarded) == EXIT_FAILED
    assert "no AWS credentials" in capsys.readouterr().err


# ---------------------------------------------------------------- the outbound Lambda


def load_outbound_lambda() -> Any:
    path = Path(__file__).resolve().parents[1] / "lambda" / "outbound_call.py"
    spec = importlib.util.spec_from_file_location("iasovoice_lambda_outbound_call", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def outbound_lambda(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber]
) -> Iterator[tuple[Any, Stubber]]:
    module = load_outbound_lambda()
    client, stubber = stubbed
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("CONNECT_INSTANCE_ID", INSTANCE_ID)
    monkeypatch.setenv("CONTACT_FLOW_ID", FLOW_ID)
    monkeypatch.setenv("SOURCE_PHONE_NUMBER", "+15550009999")
    monkeypatch.delenv("QUEUE_ID", raising=False)
    monkeypatch.setattr(module, "_CLIENTS", {"us-east-1": client})
    yield module, stubber


def test_outbound_lambda_places_call(outbound_lambda: tuple[Any, Stubber]) -> None:
    module, stubber = outbound_lambda
    stubber.add_response("start_outbound_voice_contact", {"ContactId": CONTACT_ID}, expected())
    response = module.lambda_handler({"PhoneNumber": "+15550102030", "PatientId": "P-1001"}, None)
    assert response == {"Outcome": "started", "ContactId": CONTACT_ID, "Retryable": "false", "Error": ""}


def test_outbound_lambda_accepts_connect_event_parameters(outbound_lambda: tuple[Any, Stubber]) -> None:
    module, stubber = outbound_lambda
    stubber.add_response(
        "start_outbound_voice_contact", {"ContactId": CONTACT_ID}, expected(call_type="Callback")
    )
    event = {
        "Name": "ContactFlowEvent",
        "Details": {
            "ContactData": {"ContactId": "x", "Attributes": {}},
            "Parameters": {"PhoneNumber": "+15550102030", "PatientId": "P-1001", "CallType": "Callback"},
        },
    }
    assert module.lambda_handler(event, None)["Outcome"] == "started"


def test_outbound_lambda_throttled_and_bad_input(
    outbound_lambda: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, stubber = outbound_lambda
    stubber.add_client_error("start_outbound_voice_contact", service_error_code="LimitExceededException")
    throttled = module.lambda_handler({"PhoneNumber": "+15550102030", "PatientId": "P-1001"}, None)
    assert throttled["Outcome"] == "throttled" and throttled["Retryable"] == "true"
    assert (
        module.lambda_handler({"PhoneNumber": "0102030", "PatientId": "P-1001"}, None)["Outcome"]
        == "invalid_number"
    )
    assert module.lambda_handler({"PhoneNumber": "+15550102030"}, None)["Outcome"] == "invalid_request"
    assert module.lambda_handler(None, None)["Outcome"] == "invalid_number"
    monkeypatch.delenv("SOURCE_PHONE_NUMBER")
    missing = module.lambda_handler({"PhoneNumber": "+15550102030", "PatientId": "P-1001"}, None)
    assert missing["Outcome"] == "missing_config" and "SOURCE_PHONE_NUMBER or QUEUE_ID" in missing["Error"]
    assert all(isinstance(v, str) for v in missing.values())
