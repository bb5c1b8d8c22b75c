"""The Amazon Connect flow templates: schema, graph, behaviour the issue asks for, and rendering."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from iasovoice.aws.commands import register, render_command
from iasovoice.aws.escalation import ESCALATION_ATTRIBUTE, ESCALATION_KINDS
from iasovoice.aws.flows import (
    FLOW_TEMPLATES,
    TEMPLATE_DIR,
    FlowRenderError,
    fill_placeholders,
    find_placeholders,
    flow_problems,
    graph_problems,
    load_schema,
    placeholder_values,
    render_flows,
    transition_targets,
)
from iasovoice.aws.settings import ConnectSettings
from iasovoice.errors import ConfigError

MAIN = "iasovoice_medical_assistant.json"
AUTH = "iasovoice_patient_authentication.json"
STAFF_QUEUE = (
    "arn:aws:connect:eu-west-2:123456789012:instance/6b9a4c3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d"
    "/queue/9f8e7d6c-5b4a-4392-8170-fedcba987654"
)
ESCALATION_CHECK = f"$.Attributes.{ESCALATION_ATTRIBUTE}"
TRANSFER_TYPES = ("TransferParticipantToThirdParty", "TransferContactToQueue")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return load_schema()


@pytest.fixture()
def settings() -> ConnectSettings:
    return ConnectSettings(
        region="eu-west-2",
        instance_id="6b9a4c3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d",
        contact_flow_id="11111111-2222-4333-8444-555555555555",
        auth_contact_flow_id="66666666-7777-4888-9999-aaaaaaaaaaaa",
        lookup_lambda_arn="arn:aws:lambda:eu-west-2:123456789012:function:iasovoice-patient-lookup",
        auth_lambda_arn="arn:aws:lambda:eu-west-2:123456789012:function:iasovoice-patient-auth",
        agent_turn_lambda_arn="arn:aws:lambda:eu-west-2:123456789012:function:iasovoice-agent-turn",
        websocket_url="wss://voice.clinic.test/connect",
        patients_table="clinic-patients",
        source_phone_number="+442071234567",
        emergency_transfer_number="+442079460000",
        crisis_transfer_number="+442079460001",
        staff_queue_arn=STAFF_QUEUE,
    )


def template(name: str) -> dict[str, Any]:
    return json.loads((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def actions_by_id(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["Identifier"]: a for a in flow["Actions"]}


def reaches(flow: dict[str, Any], start: str, predicate: Any) -> bool:
    """True when every path from `start` ends in an action for which `predicate` holds."""
    actions = actions_by_id(flow)
    seen: set[str] = set()
    pending = [start]
    found = False
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        if predicate(actions[current]):
            found = True
            continue
        pending.extend(transition_targets(actions[current]))
    return found


def test_schema_is_a_valid_draft_2020_12_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", FLOW_TEMPLATES)
def test_every_template_is_valid_before_rendering(name: str, schema: dict[str, Any]) -> None:
    assert flow_problems(template(name), schema) == []


def test_the_repo_has_no_other_flow_files() -> None:
    on_disk = {p.name for p in TEMPLATE_DIR.glob("*.json")} - {"flow_schema.json"}
    assert on_disk == set(FLOW_TEMPLATES)


def test_seed_sketch_with_actions_as_a_map_is_rejected(schema: dict[str, Any]) -> None:
    seed_sketch = {
        "Version": "2019-10-30",
        "StartAction": "greeting",
        "Actions": {
            "greeting": {"Type": "MessageParticipant", "Parameters": {"Text": "hi"}, "Transitions": {}},
        },
    }
    problems = flow_problems(seed_sketch, schema)
    assert any(p.startswith("Actions:") for p in problems)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda f: f["Actions"][2]["Parameters"].update(InvocationTimeLimitSeconds="30"),
            "Actions/2/Parameters",
        ),
        (lambda f: f["Actions"][2]["Transitions"].update(Errors=[]), "Actions/2/Transitions"),
        (lambda f: f["Actions"][1].update(Type="PlayPrompt"), "Actions/1/Type"),
        (lambda f: f.update(Version="2020-01-01"), "Version"),
        (lambda f: f["Actions"][1].update(Identifier="bad/id"), "Actions/1/Identifier"),
        (lambda f: f["Actions"][6]["Parameters"].update(MediaStreamType="Video"), "Actions/6/Parameters"),
    ],
)
def test_schema_rejects_broken_actions(mutate: Any, expected: str, schema: dict[str, Any]) -> None:
    flow = copy.deepcopy(template(MAIN))
    mutate(flow)
    problems = flow_problems(flow, schema)
    assert any(p.startswith(expected) for p in problems), problems


def test_graph_check_finds_dangling_unreachable_and_duplicate_actions() -> None:
    flow = copy.deepcopy(template(MAIN))
    by_id = actions_by_id(flow)
    by_id["greeting"]["Transitions"]["NextAction"] = "no-such-action"
    flow["Actions"].append(
        {"Identifier": "orphan", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}
    )
    flow["Actions"].append(copy.deepcopy(by_id["disconnect"]))
    problems = graph_problems(flow)
    assert "action 'greeting' transitions to unknown action 'no-such-action'" in problems
    assert "action 'orphan' is unreachable from StartAction 'enable-flow-logs'" in problems
    assert "duplicate action identifiers: disconnect" in problems


def test_graph_check_finds_bad_start_and_dead_end() -> None:
    flow = copy.deepcopy(template(AUTH))
    flow["StartAction"] = "nowhere"
    actions_by_id(flow)["auth-success"]["Transitions"] = {}
    problems = graph_problems(flow)
    assert "StartAction 'nowhere' is not the Identifier of any action" in problems
    flow["StartAction"] = "disable-flow-logs"
    assert "action 'auth-success' (MessageParticipant) has no transition out" in graph_problems(flow)


def test_main_flow_does_what_the_issue_asks() -> None:
    flow = template(MAIN)
    actions = actions_by_id(flow)
    greeting = actions[actions[flow["StartAction"]]["Transitions"]["NextAction"]]
    assert greeting["Type"] == "MessageParticipant"
    lookup = actions[greeting["Transitions"]["NextAction"]]
    assert lookup["Type"] == "InvokeLambdaFunction"
    assert lookup["Parameters"]["LambdaFunctionARN"] == "${LOOKUP_LAMBDA_ARN}"
    assert lookup["Parameters"]["ResponseValidation"] == {"ResponseType": "STRING_MAP"}
    store = actions[lookup["Transitions"]["NextAction"]]
    assert store["Type"] == "UpdateContactAttributes"
    stored = store["Parameters"]["Attributes"]
    assert stored["PatientId"] == "$.External.PatientId"
    assert stored["Authenticated"] == "$.External.Authenticated"
    streaming = [a for a in flow["Actions"] if a["Type"] == "UpdateContactMediaStreamingBehavior"]
    started = [a for a in streaming if a["Parameters"]["MediaStreamingState"] == "Enabled"]
    assert len(started) == 1
    assert started[0]["Parameters"]["Participants"] == [
        {"ParticipantType": "Customer", "MediaDirections": ["From"]}
    ]
    agent = actions[started[0]["Transitions"]["NextAction"]]
    assert agent["Parameters"]["LambdaFunctionARN"] == "${AGENT_TURN_LAMBDA_ARN}"
    # Unauthenticated callers go to the authentication flow.
    transfers = [a for a in flow["Actions"] if a["Type"] == "TransferToFlow"]
    assert [t["Parameters"]["ContactFlowId"] for t in transfers] == ["${AUTH_FLOW_ID}"]


@pytest.mark.parametrize("name", [MAIN, AUTH])
def test_every_error_and_timeout_branch_ends_in_a_disconnect(name: str) -> None:
    flow = template(name)
    actions = actions_by_id(flow)
    branches = [
        error["NextAction"]
        for action in flow["Actions"]
        for error in action.get("Transitions", {}).get("Errors", [])
        if error["ErrorType"] in ("NoMatchingError", "InputTimeLimitExceeded")
        and action["Type"] != "MessageParticipant"
    ]
    assert branches
    for target in branches:
        assert reaches(flow, target, lambda a: a["Type"] == "DisconnectParticipant"), target
    assert any(a["Type"] == "DisconnectParticipant" for a in actions.values())


def test_auth_flow_collects_dtmf_checks_it_and_sets_authenticated() -> None:
    flow = template(AUTH)
    inputs = [a for a in flow["Actions"] if a["Type"] == "GetParticipantInput"]
    assert {a["Identifier"] for a in inputs} == {"get-patient-id", "get-date-of-birth"}
    dob = actions_by_id(flow)["get-date-of-birth"]
    assert dob["Parameters"]["StoreInput"] == "True"
    assert dob["Parameters"]["InputValidation"] == {"CustomValidation": {"MaximumLength": "8"}}
    assert {e["ErrorType"] for e in dob["Transitions"]["Errors"]} == {
        "InputTimeLimitExceeded",
        "NoMatchingError",
    }
    check = actions_by_id(flow)[dob["Transitions"]["NextAction"]]
    assert check["Parameters"]["LambdaFunctionARN"] == "${AUTH_LAMBDA_ARN}"
    assert check["Parameters"]["LambdaInvocationAttributes"] == {"DateOfBirth": "$.StoredCustomerInput"}
    setters = [a for a in flow["Actions"] if a["Type"] == "UpdateContactAttributes"]
    assert any(
        a["Parameters"]["Attributes"].get("Authenticated") == "$.External.Authenticated" for a in setters
    )
    # DTMF date of birth must not end up in flow logs.
    first = actions_by_id(flow)[flow["StartAction"]]
    assert (
        first["Type"] == "UpdateFlowLoggingBehavior"
        and first["Parameters"]["FlowLoggingBehavior"] == "Disabled"
    )


def test_render_fills_every_placeholder_and_writes_valid_flows(
    tmp_path: Path, settings: ConnectSettings, schema: dict[str, Any]
) -> None:
    written = render_flows(settings, tmp_path)
    assert sorted(p.name for p in written) == sorted(FLOW_TEMPLATES)
    for path in written:
        flow = json.loads(path.read_text())
        assert find_placeholders(flow) == set()
        assert flow_problems(flow, schema) == []
    main = json.loads((tmp_path / MAIN).read_text())
    text = json.dumps(main)
    assert settings.lookup_lambda_arn in text and settings.agent_turn_lambda_arn in text
    assert (
        actions_by_id(main)["to-authentication"]["Parameters"]["ContactFlowId"]
        == settings.auth_contact_flow_id
    )
    stored = actions_by_id(main)["store-lookup-attributes"]["Parameters"]["Attributes"]
    assert stored["IasoVoiceWebSocketUrl"] == "wss://voice.clinic.test/connect"
    auth = json.loads((tmp_path / AUTH).read_text())
    assert actions_by_id(auth)["back-to-assistant"]["Parameters"]["ContactFlowId"] == settings.contact_flow_id
    assert (
        actions_by_id(auth)["check-credentials"]["Parameters"]["LambdaFunctionARN"]
        == settings.auth_lambda_arn
    )


def test_render_refuses_shipped_placeholder_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="instance_id"):
        render_flows(ConnectSettings(), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert len(render_flows(ConnectSettings(), tmp_path / "preview", allow_placeholders=True)) == 3


def test_unknown_or_empty_placeholder_fails_clearly(tmp_path: Path, settings: ConnectSettings) -> None:
    flow = template(MAIN)
    actions_by_id(flow)["greeting"]["Parameters"]["Text"] = "Welcome to ${CLINIC_NAME}"
    with pytest.raises(FlowRenderError, match=r"\$\{CLINIC_NAME\}"):
        fill_placeholders(flow, placeholder_values(settings))
    values = dict(placeholder_values(settings), LOOKUP_LAMBDA_ARN="")
    with pytest.raises(FlowRenderError, match="LOOKUP_LAMBDA_ARN"):
        fill_placeholders(template(MAIN), values)

    broken_dir = tmp_path / "templates"
    broken_dir.mkdir()
    for name in FLOW_TEMPLATES + ("flow_schema.json",):
        (broken_dir / name).write_text((TEMPLATE_DIR / name).read_text())
    (broken_dir / MAIN).write_text(json.dumps(flow))
    with pytest.raises(FlowRenderError, match="CLINIC_NAME"):
        render_flows(settings, tmp_path / "out", template_dir=broken_dir)
    assert not (tmp_path / "out").exists()


def test_placeholder_value_with_quotes_cannot_break_json(settings: ConnectSettings) -> None:
    values = dict(placeholder_values(settings), WEBSOCKET_URL='wss://x"}, {"evil": 1')
    rendered = fill_placeholders(template(MAIN), values)
    stored = actions_by_id(rendered)["store-lookup-attributes"]["Parameters"]["Attributes"]
    assert stored["IasoVoiceWebSocketUrl"] == 'wss://x"}, {"evil": 1'


def test_render_command_through_argparse(tmp_path: Path, settings: ConnectSettings, capsys: Any) -> None:
    parser = argparse.ArgumentParser(prog="iasovoice")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["flows", "render", "--out", str(tmp_path / "rendered")])
    assert args.aws_handler is render_command
    assert args.aws_handler(args, settings) == 0
    assert len(list((tmp_path / "rendered").glob("*.json"))) == 3
    assert str(tmp_path / "rendered") in capsys.readouterr().out

    args = parser.parse_args(["flows", "render", "--out", str(tmp_path / "refused")])
    assert args.aws_handler(args, ConnectSettings()) == 1
    assert "placeholder values" in capsys.readouterr().err


# --- Escalation: IasoVoice sets IasoEscalation (iasovoice/aws/escalation.py), the flow transfers. ---


def escalation_checks(flow: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        a
        for a in flow["Actions"]
        if a["Type"] == "Compare" and a["Parameters"]["ComparisonValue"] == ESCALATION_CHECK
    ]


def escalation_path(flow: dict[str, Any], start: str) -> list[dict[str, Any]]:
    """The actions from `start` along NextAction up to and including the first transfer action."""
    actions = actions_by_id(flow)
    path = [actions[start]]
    while path[-1]["Type"] not in TRANSFER_TYPES:
        assert len(path) < 10, [a["Identifier"] for a in path]
        path.append(actions[path[-1]["Transitions"]["NextAction"]])
    return path


def branches(check: dict[str, Any]) -> dict[str, str]:
    return {c["Condition"]["Operands"][0]: c["NextAction"] for c in check["Transitions"]["Conditions"]}


def test_the_flow_checks_the_attribute_wherever_the_turn_loop_regains_control() -> None:
    flow = template(MAIN)
    actions = actions_by_id(flow)
    checks = {a["Identifier"]: a for a in escalation_checks(flow)}
    assert set(checks) == {"check-escalation", "check-escalation-before-hangup", "check-escalation-on-error"}

    # After the agent's prompt has played (the safety script comes first, then the transfer) ...
    speaks = actions["agent-speaks"]
    assert speaks["Transitions"]["NextAction"] == "check-escalation"
    assert {e["NextAction"] for e in speaks["Transitions"]["Errors"]} == {"check-escalation"}
    # ... on listen, hangup, an unknown answer, and when the turn Lambda fails or times out.
    agent_action = branches(actions["check-agent-action"])
    assert agent_action == {
        "speak": "agent-speaks",
        "listen": "check-escalation",
        "hangup": "check-escalation-before-hangup",
    }
    assert actions["check-agent-action"]["Transitions"]["NextAction"] == "check-escalation-on-error"
    assert {e["NextAction"] for e in actions["agent-turn"]["Transitions"]["Errors"]} == {
        "check-escalation-on-error"
    }
    # Anything else (attribute unset or another value) carries on exactly as before.
    defaults = {
        "check-escalation": "agent-turn",
        "check-escalation-before-hangup": "stop-streaming",
        "check-escalation-on-error": "stop-streaming-on-error",
    }
    for identifier, default in defaults.items():
        transitions = checks[identifier]["Transitions"]
        assert transitions["NextAction"] == default
        assert transitions["Errors"] == [{"NextAction": default, "ErrorType": "NoMatchingCondition"}]
        assert set(branches(checks[identifier])) == set(ESCALATION_KINDS)


def test_rendered_flow_branches_on_all_three_values_to_the_right_targets(
    tmp_path: Path, settings: ConnectSettings, schema: dict[str, Any]
) -> None:
    render_flows(settings, tmp_path)
    flow = json.loads((tmp_path / MAIN).read_text())
    assert flow_problems(flow, schema) == []
    checks = escalation_checks(flow)
    assert len(checks) == 3
    for check in checks:
        targets = branches(check)
        assert list(targets) == ["emergency", "crisis", "staff"]
        for condition in check["Transitions"]["Conditions"]:
            assert condition["Condition"]["Operator"] == "Equals"
        paths = {kind: escalation_path(flow, target) for kind, target in targets.items()}

        # The caller's audio stops streaming to IasoVoice before a person comes on the line.
        for path in paths.values():
            first = path[0]
            assert first["Type"] == "UpdateContactMediaStreamingBehavior"
            assert first["Parameters"]["MediaStreamingState"] == "Disabled"
            assert any(a["Type"] == "MessageParticipant" for a in path[1:-1])

        emergency, crisis = paths["emergency"][-1], paths["crisis"][-1]
        for transfer, number in ((emergency, "+442079460000"), (crisis, "+442079460001")):
            assert transfer["Type"] == "TransferParticipantToThirdParty"
            assert transfer["Parameters"]["ThirdPartyPhoneNumber"] == number
            assert transfer["Parameters"]["ContinueFlowExecution"] == "True"
            errors = {e["ErrorType"] for e in transfer["Transitions"]["Errors"]}
            assert errors == {"CallFailed", "ConnectionTimeLimitExceeded", "NoMatchingError"}
        staff_path = paths["staff"]
        assert staff_path[-1]["Type"] == "TransferContactToQueue"
        set_queue = staff_path[-2]
        assert set_queue["Type"] == "UpdateContactTargetQueue"
        assert set_queue["Parameters"] == {"QueueId": settings.staff_queue_arn}
        assert {e["ErrorType"] for e in staff_path[-1]["Transitions"]["Errors"]} == {
            "QueueAtCapacity",
            "NoMatchingError",
        }


@pytest.mark.parametrize(
    "failed", ["emergency-transfer-failed", "crisis-transfer-failed", "staff-transfer-failed"]
)
def test_a_failed_transfer_tells_the_caller_where_to_call_then_disconnects(failed: str) -> None:
    flow = template(MAIN)
    message = actions_by_id(flow)[failed]
    assert message["Type"] == "MessageParticipant"
    assert "911" in message["Parameters"]["Text"]
    assert actions_by_id(flow)[message["Transitions"]["NextAction"]]["Type"] == "DisconnectParticipant"
    sources = [
        a["Identifier"]
        for a in flow["Actions"]
        if failed in transition_targets(a) and a["Type"] in TRANSFER_TYPES + ("UpdateContactTargetQueue",)
    ]
    assert sources
    if failed == "crisis-transfer-failed":
        assert "988" in message["Parameters"]["Text"]


def test_escalation_targets_come_from_the_connect_config(settings: ConnectSettings) -> None:
    values = placeholder_values(settings)
    assert values["EMERGENCY_TRANSFER_NUMBER"] == settings.emergency_transfer_number
    assert values["CRISIS_TRANSFER_NUMBER"] == settings.crisis_transfer_number
    assert values["STAFF_QUEUE_ARN"] == settings.staff_queue_arn
    assert {"EMERGENCY_TRANSFER_NUMBER", "CRISIS_TRANSFER_NUMBER", "STAFF_QUEUE_ARN"} <= find_placeholders(
        template(MAIN)
    )


@pytest.mark.parametrize("field", ["emergency_transfer_number", "crisis_transfer_number", "staff_queue_arn"])
def test_render_refuses_a_shipped_escalation_target(
    tmp_path: Path, settings: ConnectSettings, field: str
) -> None:
    unset = settings.model_copy(update={field: ConnectSettings.model_fields[field].default})
    assert unset.placeholder_fields() == [field]
    with pytest.raises(ConfigError, match=field):
        render_flows(unset, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("emergency_transfer_number", "911"),
        ("crisis_transfer_number", "988"),
        ("emergency_transfer_number", "+1 555 010 2030"),
        ("staff_queue_arn", "9f8e7d6c-5b4a-4392-8170-fedcba987654"),
        ("staff_queue_arn", "arn:aws:connect:eu-west-2:123456789012:instance/x/contact-flow/y"),
    ],
)
def test_escalation_settings_are_validated(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        ConnectSettings(**{field: value})


def _action(flow: dict[str, Any], identifier: str) -> dict[str, Any]:
    return actions_by_id(flow)[identifier]


def _index(flow: dict[str, Any], identifier: str) -> int:
    return [a["Identifier"] for a in flow["Actions"]].index(identifier)


@pytest.mark.parametrize(
    ("identifier", "mutate"),
    [
        # A third-party transfer that keeps control must handle a failed or unanswered call ...
        ("transfer-emergency", lambda a: a["Transitions"].update(Errors=a["Transitions"]["Errors"][2:])),
        # ... and one that hands the call over has no such branches.
        ("transfer-crisis", lambda a: a["Parameters"].update(ContinueFlowExecution="False")),
        ("transfer-crisis", lambda a: a["Parameters"].update(ThirdPartyPhoneNumber="911")),
        ("transfer-crisis", lambda a: a["Parameters"].update(ThirdPartyConnectionTimeLimitSeconds="601")),
        ("transfer-crisis", lambda a: a["Parameters"].pop("ThirdPartyConnectionTimeLimitSeconds")),
        ("transfer-to-staff-queue", lambda a: a["Transitions"].update(Errors=a["Transitions"]["Errors"][1:])),
        ("transfer-to-staff-queue", lambda a: a["Parameters"].update(QueueId="x")),
        ("set-staff-queue", lambda a: a["Parameters"].update(AgentId="agent")),
        ("set-staff-queue", lambda a: a["Parameters"].update(QueueId="staff")),
    ],
)
def test_schema_rejects_broken_escalation_actions(
    identifier: str, mutate: Any, schema: dict[str, Any]
) -> None:
    flow = copy.deepcopy(template(MAIN))
    mutate(_action(flow, identifier))
    problems = flow_problems(flow, schema)
    assert any(p.startswith(f"Actions/{_index(flow, identifier)}") for p in problems), problems
