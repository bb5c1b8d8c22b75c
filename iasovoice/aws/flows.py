"""Render the Amazon Connect flow templates in `contact_flows/` and check them before deploying.

Templates hold `${NAME}` placeholders (Lambda ARNs, the websocket URL, flow ids, the escalation
transfer targets) so that no account-specific value is ever edited by hand in a flow.
`render_flows` fills them from `ConnectSettings`, refuses to write a flow with an unfilled or
unknown placeholder, and checks every rendered flow twice: against
`contact_flows/flow_schema.json` (structure and parameters) and as a graph (every transition
lands on an action, every action is reachable), because Connect only reports such mistakes when
the flow is published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iasovoice.aws.settings import ConnectSettings
from iasovoice.errors import ConfigError, IasoVoiceError

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "contact_flows"
SCHEMA_FILE = "flow_schema.json"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]*)\}")

# Flows a deployment renders; the bootstrap placeholder needs no values and is copied as is.
FLOW_TEMPLATES: tuple[str, ...] = (
    "iasovoice_medical_assistant.json",
    "iasovoice_patient_authentication.json",
    "bootstrap_placeholder.json",
)


class FlowRenderError(IasoVoiceError):
    """A flow template could not be rendered into an importable flow; the message says why."""


def placeholder_values(settings: ConnectSettings) -> dict[str, str]:
    """Map each template placeholder to its value in the `connect:` config section."""
    return {
        "LOOKUP_LAMBDA_ARN": settings.lookup_lambda_arn,
        "AUTH_LAMBDA_ARN": settings.auth_lambda_arn,
        "AGENT_TURN_LAMBDA_ARN": settings.agent_turn_lambda_arn,
        "WEBSOCKET_URL": settings.websocket_url,
        "MAIN_FLOW_ID": settings.contact_flow_id,
        "AUTH_FLOW_ID": settings.auth_contact_flow_id,
        "EMERGENCY_TRANSFER_NUMBER": settings.emergency_transfer_number,
        "CRISIS_TRANSFER_NUMBER": settings.crisis_transfer_number,
        "STAFF_QUEUE_ARN": settings.staff_queue_arn,
    }


def find_placeholders(document: Any) -> set[str]:
    """Every `${NAME}` left in any string (keys included) of a JSON document."""
    found: set[str] = set()
    for text in _strings(document):
        found.update(PLACEHOLDER.findall(text))
    return found


def fill_placeholders(document: Any, values: Mapping[str, str], source: str = "<flow>") -> Any:
    """Return a copy of `document` with `${NAME}` replaced in string values.

    Substitution happens on parsed JSON, never on the raw text, so a value containing quotes
    cannot break the document. Unknown names and empty values are errors: a flow that invokes
    an empty Lambda ARN imports fine and fails on the first call.
    """
    missing = sorted(name for name in find_placeholders(document) if not values.get(name))
    if missing:
        raise FlowRenderError(
            f"{source}: no value for placeholder(s) {', '.join('${' + m + '}' for m in missing)}; "
            f"known placeholders are {', '.join(sorted(values))} (set them in the connect: section "
            "of configs/app.yaml)"
        )

    def substitute(node: Any) -> Any:
        if isinstance(node, str):
            return PLACEHOLDER.sub(lambda match: values[match.group(1)], node)
        if isinstance(node, list):
            return [substitute(item) for item in node]
        if isinstance(node, dict):
            return {substitute(key): substitute(value) for key, value in node.items()}
        return node

    return substitute(document)


def load_schema(template_dir: Path = TEMPLATE_DIR) -> dict[str, Any]:
    """The JSON schema of the flow-language subset, kept next to the templates."""
    return json.loads((template_dir / SCHEMA_FILE).read_text(encoding="utf-8"))


def schema_problems(flow: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Schema violations as readable lines (`Actions/3/Parameters: ...`), empty when valid."""
    import jsonschema  # a Ray dependency; imported here so settings stay importable without it

    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(flow), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path) or "<root>"
        problems.append(f"{where}: {error.message}")
    return problems


def graph_problems(flow: Mapping[str, Any]) -> list[str]:
    """Problems JSON Schema cannot see: duplicate ids, dangling transitions, unreachable actions."""
    actions = flow.get("Actions", [])
    problems: list[str] = []
    ids: list[str] = [a.get("Identifier", "") for a in actions if isinstance(a, dict)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        problems.append(f"duplicate action identifiers: {', '.join(duplicates)}")
    known = set(ids)
    start = flow.get("StartAction")
    if start not in known:
        problems.append(f"StartAction {start!r} is not the Identifier of any action")

    edges: dict[str, list[str]] = {}
    for action in actions:
        if not isinstance(action, dict):
            continue
        source = action.get("Identifier", "")
        targets = list(transition_targets(action))
        edges[source] = targets
        for target in targets:
            if target not in known:
                problems.append(f"action {source!r} transitions to unknown action {target!r}")
        if not targets and action.get("Type") != "DisconnectParticipant":
            problems.append(f"action {source!r} ({action.get('Type')}) has no transition out")

    reachable: set[str] = set()
    pending = [start] if start in known else []
    while pending:
        current = pending.pop()
        if current in reachable:
            continue
        reachable.add(current)
        pending.extend(t for t in edges.get(current, []) if t in known)
    for identifier in ids:
        if identifier not in reachable and start in known:
            problems.append(f"action {identifier!r} is unreachable from StartAction {start!r}")
    return problems


def transition_targets(action: Mapping[str, Any]) -> Iterable[str]:
    """Every action id an action can move to: NextAction, each Condition and each Error branch."""
    transitions = action.get("Transitions") or {}
    if transitions.get("NextAction"):
        yield transitions["NextAction"]
    for branch in list(transitions.get("Conditions") or []) + list(transitions.get("Errors") or []):
        if isinstance(branch, dict) and branch.get("NextAction"):
            yield branch["NextAction"]


def flow_problems(flow: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """All schema and graph problems of one flow."""
    return schema_problems(flow, schema) + graph_problems(flow)


def render_flows(
    settings: ConnectSettings,
    out_dir: Path,
    template_dir: Path = TEMPLATE_DIR,
    allow_placeholders: bool = False,
) -> list[Path]:
    """Render every template into `out_dir` and return the written paths.

    Refuses (FlowRenderError) when the settings still hold the shipped placeholder values, unless
    `allow_placeholders` (for previews and tests), and when any rendered flow has a problem.
    Nothing is written unless every flow renders cleanly.
    """
    if not allow_placeholders:
        leftovers = settings.placeholder_fields()
        if leftovers:
            raise ConfigError(
                "configs/app.yaml connect: still has placeholder values for "
                f"{', '.join(leftovers)}; fill them in (see docs/connect-setup.md) or pass "
                "--allow-placeholders for a preview"
            )
    schema = load_schema(template_dir)
    values = placeholder_values(settings)
    rendered: dict[str, Any] = {}
    for name in FLOW_TEMPLATES:
        path = template_dir / name
        if not path.is_file():
            raise FlowRenderError(f"flow template {path} is missing")
        try:
            template = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise FlowRenderError(f"{path}: not valid JSON ({exc})") from exc
        flow = fill_placeholders(template, values, source=str(path))
        problems = flow_problems(flow, schema)
        if problems:
            raise FlowRenderError(f"{path} renders into an invalid flow:\n  " + "\n  ".join(problems))
        rendered[name] = flow

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, flow in rendered.items():
        target = out_dir / name
        target.write_text(json.dumps(flow, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    return written


def _strings(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
