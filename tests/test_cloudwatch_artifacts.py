"""CloudWatch dashboard and alarms: the seed's widgets and alarms, valid for the real APIs."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from iasovoice.aws.metrics_dashboard import (
    ALARMS_FILE,
    CFN_FILE,
    DASHBOARD_FILE,
    SEED_ALARM_METRICS,
    SEED_WIDGET_METRICS,
    build_cloudformation,
    dashboard_metrics,
    dashboard_problems,
    load_json,
    main,
    render_for_cli,
)

INSTANCE_ID = "6b9a4c3e-1d2f-4a5b-8c7d-0e1f2a3b4c5d"
TOPIC = "arn:aws:sns:us-east-1:123456789012:iasovoice-alarms"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_json(DASHBOARD_FILE)


@pytest.fixture(scope="module")
def alarms() -> list[dict[str, Any]]:
    return load_json(ALARMS_FILE)


@pytest.fixture(scope="module")
def cloudwatch_model() -> Any:
    client = boto3.client(
        "cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client.meta.service_model


def test_dashboard_has_the_seed_widgets(dashboard: dict[str, Any]) -> None:
    assert dashboard_problems(dashboard) == []
    present = {metric for _, metric in dashboard_metrics(dashboard)}
    assert set(SEED_WIDGET_METRICS) <= present
    namespaces = {metric: ns for ns, metric in dashboard_metrics(dashboard)}
    assert namespaces["CallsPerInterval"] == "AWS/Connect"
    assert namespaces["TranscriptionLatency"] == "IasoVoice"


def test_dashboard_problems_can_fail(dashboard: dict[str, Any]) -> None:
    broken = copy.deepcopy(dashboard)
    broken["widgets"] = [w for w in broken["widgets"] if "SOAP" not in w["properties"]["title"]]
    broken["widgets"][0]["properties"]["metrics"][0] = ["AWS/Connect", "CallsPerInterval", "InstanceId"]
    broken["widgets"][1]["x"] = 20
    problems = dashboard_problems(broken)
    assert "dashboard lacks the SOAPGenerationTime widget metric" in problems
    assert any("widget 0 metric 0" in p for p in problems)
    assert any("widget 1: x + width" in p for p in problems)
    assert dashboard_problems({"widgets": []})


def test_alarms_cover_the_seed_list(alarms: list[dict[str, Any]]) -> None:
    assert set(SEED_ALARM_METRICS) <= {a["MetricName"] for a in alarms}
    assert len({a["AlarmName"] for a in alarms}) == len(alarms)


def test_rendered_alarms_are_valid_put_metric_alarm_requests(
    dashboard: dict[str, Any], alarms: list[dict[str, Any]], cloudwatch_model: Any
) -> None:
    body, requests = render_for_cli(dashboard, alarms, INSTANCE_ID, "us-east-1", TOPIC)
    shape = cloudwatch_model.operation_model("PutMetricAlarm").input_shape
    for request in requests:
        validate_parameters(request, shape)
        assert "${" not in json.dumps(request)
        assert request["AlarmActions"] == [TOPIC]
    dashboard_shape = cloudwatch_model.operation_model("PutDashboard").input_shape
    validate_parameters({"DashboardName": "IasoVoice", "DashboardBody": json.dumps(body)}, dashboard_shape)
    assert INSTANCE_ID in json.dumps(body) and "${" not in json.dumps(body)


def test_model_validation_can_fail(alarms: list[dict[str, Any]], cloudwatch_model: Any) -> None:
    shape = cloudwatch_model.operation_model("PutMetricAlarm").input_shape
    bad = dict(alarms[0], Threshold="high", Unknown=1)
    with pytest.raises(ParamValidationError):
        validate_parameters(bad, shape)


def test_cloudformation_template_is_generated_from_the_configs(
    dashboard: dict[str, Any], alarms: list[dict[str, Any]]
) -> None:
    generated = build_cloudformation(dashboard, alarms)
    assert json.loads(CFN_FILE.read_text()) == generated, "run: python -m iasovoice.aws.metrics_dashboard cfn"
    resources = generated["Resources"]
    assert sum(r["Type"] == "AWS::CloudWatch::Alarm" for r in resources.values()) == len(alarms)
    body = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    assert body == dashboard


@pytest.mark.skipif(shutil.which("cfn-lint") is None, reason="cfn-lint is not installed")
def test_cloudformation_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        ["cfn-lint", str(CFN_FILE)], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_files(tmp_path: Path) -> None:
    assert (
        main(
            [
                "cli",
                "--instance-id",
                INSTANCE_ID,
                "--region",
                "eu-west-2",
                "--topic-arn",
                TOPIC,
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    body = json.loads((tmp_path / "dashboard-body.json").read_text())
    assert {w["properties"]["region"] for w in body["widgets"]} == {"eu-west-2"}
    assert len(list(tmp_path.glob("alarm-*.json"))) == len(load_json(ALARMS_FILE))
