"""argparse subcommands `flows render` and `dial`, registered into the lead's `iasovoice` CLI.

`iasovoice/cli.py` loads `configs/app.yaml`, builds `ConnectSettings` from its `connect:` section
and calls `args.aws_handler(args, settings)`; each handler returns the process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iasovoice.aws.flows import TEMPLATE_DIR, FlowRenderError, render_flows
from iasovoice.aws.outbound import OutboundCallError, place_outbound_call
from iasovoice.aws.settings import ConnectSettings
from iasovoice.errors import ConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_RETRY = 75  # EX_TEMPFAIL: schedulers may retry a throttled dial


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `flows render` and `dial` to the CLI's subparsers."""
    flows = subparsers.add_parser("flows", help="Amazon Connect flow templates")
    flow_commands = flows.add_subparsers(dest="flows_command", required=True)
    render = flow_commands.add_parser(
        "render", help="fill contact_flows/*.json from the connect: config and check them"
    )
    render.add_argument("--out", type=Path, required=True, help="directory for the rendered flows")
    render.add_argument("--templates", type=Path, default=TEMPLATE_DIR, help=argparse.SUPPRESS)
    render.add_argument(
        "--allow-placeholders",
        action="store_true",
        help="render even if the config still holds example values (preview only; not deployable)",
    )
    render.set_defaults(aws_handler=render_command)

    dial = subparsers.add_parser("dial", help="place an outbound IasoVoice call through Amazon Connect")
    dial.add_argument("number", help="destination in E.164 format, e.g. +15550102030")
    dial.add_argument("--patient", required=True, help="patient id passed to the flow as PatientId")
    dial.add_argument("--call-type", default="ScheduledCheckIn", help="CallType contact attribute")
    dial.set_defaults(aws_handler=dial_command)


def render_command(args: argparse.Namespace, settings: ConnectSettings) -> int:
    """`iasovoice flows render --out DIR`."""
    try:
        written = render_flows(
            settings, args.out, template_dir=args.templates, allow_placeholders=args.allow_placeholders
        )
    except (FlowRenderError, ConfigError) as exc:
        print(f"flows render: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(path)
    return EXIT_OK


def dial_command(
    args: argparse.Namespace,
    settings: ConnectSettings,
    client_factory: Callable[[ConnectSettings], Any] | None = None,
) -> int:
    """`iasovoice dial NUMBER --patient ID`: prints the contact id on success."""
    factory = client_factory or _connect_client
    try:
        contact_id = place_outbound_call(
            factory(settings), settings, args.number, args.patient, call_type=args.call_type
        )
    except OutboundCallError as exc:
        print(f"dial: {exc}", file=sys.stderr)
        return EXIT_RETRY if exc.retryable else EXIT_FAILED
    print(contact_id)
    return EXIT_OK


def _connect_client(settings: ConnectSettings) -> Any:
    import boto3

    # A fresh session: credentials are resolved now, not taken from a cached default session.
    return boto3.session.Session(region_name=settings.region).client("connect")
