"""CloudWatch dashboard and alarms for IasoVoice: check them and turn them into deployables.

Sources of truth are `configs/cloudwatch_dashboard.json` (a CloudWatch dashboard body) and
`configs/cloudwatch_alarms.json` (a list of PutMetricAlarm requests). Both use `${Name}`
placeholders in CloudFormation `Fn::Sub` syntax: `${ConnectInstanceId}`, `${AWS::Region}`,
`${AlarmTopicArn}`. Two ways to deploy them:

* `deploy/cloudwatch.json`, a CloudFormation template generated from them
  (`python -m iasovoice.aws.metrics_dashboard cfn`), and
* `python -m iasovoice.aws.metrics_dashboard cli --instance-id ID --region R --topic-arn ARN
  --out DIR`, which writes a body for `aws cloudwatch put-dashboard` and one
  `--cli-input-json` file per alarm for `aws cloudwatch put-metric-alarm`.

Custom metrics (namespace `IasoVoice`, no dimensions) are emitted by the gateway and the call
actors through actors/metrics_actor.py: WebSocketConnections, WebSocketFailures, CallsRefused,
TranscriptionLatency (ms), TranscriptionErrors, ResponseLatency (ms), SOAPGenerationTime (s),
NoteErrors.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_FILE = REPO / "configs" / "cloudwatch_dashboard.json"
ALARMS_FILE = REPO / "configs" / "cloudwatch_alarms.json"
CFN_FILE = REPO / "deploy" / "cloudwatch.json"

CUSTOM_NAMESPACE = "IasoVoice"
SEED_WIDGET_METRICS = (
    "CallsPerInterval",
    "CallRecordingUploadError",
    "ToInstancePacketLossRate",
    "WebSocketConnections",
    "TranscriptionLatency",
    "SOAPGenerationTime",
)
SEED_ALARM_METRICS = (
    "ToInstancePacketLossRate",
    "WebSocketFailures",
    "TranscriptionErrors",
    "ResponseLatency",
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)\}")


def load_json(path: Path) -> Any:
    """Parse one of the config files."""
    return json.loads(path.read_text(encoding="utf-8"))


def dashboard_metrics(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(namespace, metric) of every metric line, resolving CloudWatch's "." shorthand."""
    found: list[tuple[str, str]] = []
    for widget in body.get("widgets", []):
        previous: list[Any] = []
        for line in widget.get("properties", {}).get("metrics", []):
            names = [item for item in line if not isinstance(item, dict)]
            resolved = [
                previous[i] if item == "." and i < len(previous) else item for i, item in enumerate(names)
            ]
            if len(resolved) >= 2:
                found.append((str(resolved[0]), str(resolved[1])))
            previous = resolved
    return found


def dashboard_problems(body: Any) -> list[str]:
    """Structural problems of a dashboard body; CloudWatch would reject or mis-draw these."""
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), list) or not body["widgets"]:
        return ["dashboard body must be an object with a non-empty 'widgets' list"]
    problems = []
    for index, widget in enumerate(body["widgets"]):
        props = widget.get("properties", {}) if isinstance(widget, dict) else {}
        if widget.get("type") != "metric":
            problems.append(f"widget {index}: type must be 'metric'")
        for key in ("x", "y", "width", "height"):
            if not isinstance(widget.get(key), int) or widget[key] < 0:
                problems.append(f"widget {index}: {key} must be a non-negative integer")
        if widget.get("x", 0) + widget.get("width", 0) > 24:
            problems.append(f"widget {index}: x + width exceeds the 24-column grid")
        if not props.get("region"):
            problems.append(f"widget {index}: properties.region is required")
        metrics = props.get("metrics")
        if not isinstance(metrics, list) or not metrics:
            problems.append(f"widget {index}: properties.metrics must be a non-empty list")
            continue
        for line_no, line in enumerate(metrics):
            names = [item for item in line if not isinstance(item, dict)]
            options = [item for item in line if isinstance(item, dict)]
            if len(names) < 2 or len(names) % 2 != 0 or len(options) > 1:
                problems.append(
                    f"widget {index} metric {line_no}: expected namespace, name, then dimension "
                    "name/value pairs and at most one options object"
                )
    present = {metric for _, metric in dashboard_metrics(body)}
    problems += [
        f"dashboard lacks the {name} widget metric" for name in SEED_WIDGET_METRICS if name not in present
    ]
    return problems


def substitute(document: Any, values: Mapping[str, str]) -> Any:
    """Replace `${Name}` placeholders in every string; unknown names raise KeyError."""
    if isinstance(document, str):
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], document)
    if isinstance(document, list):
        return [substitute(item, values) for item in document]
    if isinstance(document, dict):
        return {key: substitute(value, values) for key, value in document.items()}
    return document


def build_cloudformation(dashboard: Mapping[str, Any], alarms: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A CloudFormation template with the dashboard, one alarm per entry and an SNS alarm topic."""
    resources: dict[str, Any] = {
        "AlarmTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": "iasovoice-alarms", "KmsMasterKeyId": "alias/aws/sns"},
        },
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": {"Ref": "DashboardName"},
                "DashboardBody": {"Fn::Sub": json.dumps(dashboard, separators=(",", ":"))},
            },
        },
    }
    for alarm in alarms:
        properties: dict[str, Any] = {}
        for key, value in alarm.items():
            if key == "AlarmActions":
                properties[key] = [{"Ref": "AlarmTopic"} if v == "${AlarmTopicArn}" else v for v in value]
            elif key == "Dimensions":
                properties[key] = [
                    {
                        "Name": d["Name"],
                        "Value": {"Fn::Sub": d["Value"]} if "${" in d["Value"] else d["Value"],
                    }
                    for d in value
                ]
            else:
                properties[key] = value
        logical_id = re.sub(r"[^A-Za-z0-9]", "", alarm["AlarmName"]) + "Alarm"
        resources[logical_id] = {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "IasoVoice CloudWatch dashboard and alarms. Generated from configs/cloudwatch_dashboard.json "
        "and configs/cloudwatch_alarms.json by `python -m iasovoice.aws.metrics_dashboard cfn`; do not edit.",
        "Parameters": {
            "ConnectInstanceId": {
                "Type": "String",
                "Description": "Amazon Connect instance id (UUID)",
                "AllowedPattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
            },
            "DashboardName": {"Type": "String", "Default": "IasoVoice"},
        },
        "Resources": resources,
        "Outputs": {
            "AlarmTopicArn": {
                "Description": "Subscribe on-call to this topic",
                "Value": {"Ref": "AlarmTopic"},
            }
        },
    }


def render_for_cli(
    dashboard: Mapping[str, Any],
    alarms: list[Mapping[str, Any]],
    instance_id: str,
    region: str,
    topic_arn: str,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The dashboard body and PutMetricAlarm requests with every placeholder filled."""
    values = {"ConnectInstanceId": instance_id, "AWS::Region": region, "AlarmTopicArn": topic_arn}
    return substitute(dashboard, values), [substitute(alarm, values) for alarm in alarms]


def main(argv: list[str] | None = None) -> int:
    """`cfn` regenerates deploy/cloudwatch.json; `cli` writes files for the AWS CLI."""
    parser = argparse.ArgumentParser(prog="python -m iasovoice.aws.metrics_dashboard")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("cfn", help="regenerate deploy/cloudwatch.json")
    cli = commands.add_parser("cli", help="write put-dashboard / put-metric-alarm inputs")
    cli.add_argument("--instance-id", required=True)
    cli.add_argument("--region", required=True)
    cli.add_argument("--topic-arn", required=True)
    cli.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    dashboard, alarms = load_json(DASHBOARD_FILE), load_json(ALARMS_FILE)
    problems = dashboard_problems(dashboard)
    if problems:
        parser.error("; ".join(problems))
    if args.command == "cfn":
        CFN_FILE.parent.mkdir(parents=True, exist_ok=True)
        CFN_FILE.write_text(
            json.dumps(build_cloudformation(dashboard, alarms), indent=2) + "\n", encoding="utf-8"
        )
        print(CFN_FILE)
        return 0
    body, requests = render_for_cli(dashboard, alarms, args.instance_id, args.region, args.topic_arn)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dashboard-body.json").write_text(json.dumps(body), encoding="utf-8")
    for request in requests:
        (args.out / f"alarm-{request['AlarmName']}.json").write_text(
            json.dumps(request, indent=2), encoding="utf-8"
        )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
