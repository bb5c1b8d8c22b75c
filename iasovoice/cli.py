"""`iasovoice` command line: serve, call, demo, note, token, audit (and the AWS commands from iasovoice.aws)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from iasovoice.config import AppConfig, load_config
from iasovoice.errors import IasoVoiceError
from iasovoice.logs import configure_logging

if TYPE_CHECKING:
    from gateway.server import Gateway
    from iasovoice.audit import AuditLog
    from iasovoice.runtime import Runtime

log = logging.getLogger("iasovoice")


def _http_url(ws_url: str) -> str:
    return ws_url.replace("wss://", "https://").replace("ws://", "http://").rstrip("/")


def call_token_for(config: AppConfig, call_id: str) -> str | None:
    """The call's token when the gateway takes HS256 tokens and this shell holds the secret.

    RS256 tokens need the signer's private key, which this command does not hold: pass `--token`
    (e.g. from `iasovoice token CALL_ID --private-key FILE`).
    """
    auth = config.server.auth
    if auth.mode != "jwt-hs256" or not (auth.secret_env and os.environ.get(auth.secret_env)):
        return None
    from gateway.auth import mint_for_config

    return mint_for_config(auth, call_id)


def fetch_record(
    url: str, call_id: str, kind: str = "note", timeout_s: float = 10.0, token: str | None = None
) -> dict | None:
    """GET /calls/{id}/note from a running gateway; None when it does not exist (yet)."""
    query = f"?token={token}" if token else ""
    try:
        with urllib.request.urlopen(f"{_http_url(url)}/calls/{call_id}/{kind}{query}", timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


# ------------------------------------------------------------------------------------------ serve
async def _serve_forever(config: AppConfig, runtime: Runtime, host: str | None, port: int | None) -> None:
    from gateway.server import Gateway

    gateway = Gateway(config, runtime.directory, runtime.storage, runtime.metrics)
    await gateway.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("serving; Ctrl-C to stop")
    await stop.wait()
    stop.clear()
    await _drain(config, runtime, gateway, stop)
    await gateway.stop()


async def _drain(config: AppConfig, runtime: Runtime, gateway: Gateway, again: asyncio.Event) -> None:
    """SIGTERM: no new calls; live calls get `server.drain_timeout_s`, then are hung up, and every
    call's note is finished before the process exits. A second signal skips the wait."""
    gateway.mark_draining()
    log.warning("shutting down: taking no new calls; live calls have %.0f s, then their notes are finished "
                "(signal again to stop now)", config.server.drain_timeout_s)
    assert runtime.directory is not None
    drained = asyncio.ensure_future(runtime.directory.drain.remote(config.server.drain_timeout_s))
    interrupted = asyncio.ensure_future(again.wait())
    await asyncio.wait({drained, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if drained.done():
        log.info("shutdown: %s", drained.result())
        await gateway.wait_for_sockets(2.0)
    else:
        log.error("shutdown forced by a second signal: notes of calls still live may be missing")


def cmd_serve(args: argparse.Namespace, config: AppConfig) -> int:
    from gateway.auth import TokenVerifier
    from iasovoice.runtime import Runtime

    TokenVerifier(config.server.auth)  # a missing secret or key file fails now, not after the models load
    _open_audit_log(config)  # likewise an audit log the gateway could not write
    # Ray is started from the main thread (its signal handlers need it), before the event loop runs.
    runtime = Runtime(config, progress=lambda m: log.info("%s", m))
    try:
        runtime.start()
        asyncio.run(_serve_forever(config, runtime, args.host, args.port))
    finally:
        runtime.stop()
    return 0


# ------------------------------------------------------------------------------------------- call
def _print_event(event: dict) -> None:
    kind = event.get("type")
    if kind == "transcript":
        who = "caller" if event["role"] == "caller" else "agent "
        print(f"  [{who}] {event['text']}", flush=True)
    elif kind == "note_ready":
        print("  [note  ] SOAP note stored", flush=True)
    elif kind == "error":
        print(f"  [error ] {event.get('message')}", flush=True)


def _print_note(note: dict | None) -> None:
    if note is None:
        print("no SOAP note was stored for this call")
        return
    print("\n==================== SOAP note ====================")
    for section in ("subjective", "objective", "assessment", "plan"):
        print(f"{section.upper()}:\n  {note['sections'][section]}\n")
    print(f"(model {note['model']}, {note['generation_s']:.1f} s; flags: {', '.join(note['flags']) or 'none'})")


async def run_call(
    url: str, files: list[Path], call_id: str, out: Path | None, split: bool, rate: int, token: str | None = None
) -> int:
    from iasovoice.audio.files import load_audio, write_wav
    from iasovoice.client import place_call
    from iasovoice.demo_audio import split_turns

    turns = []
    for path in files:
        samples = load_audio(path, rate)
        turns.extend(split_turns(samples, rate) if split else [samples])
    print(f"calling {url}/connect/{call_id} with {len(turns)} caller turn(s) at {rate} Hz", flush=True)
    report = await place_call(url, call_id, turns, rate, on_event=_print_event, token=token)
    latencies = [t.latency_s for t in report.turns if t.latency_s is not None]
    if latencies:
        print(f"voice-to-voice latency per turn (s): {', '.join(f'{x:.2f}' for x in latencies)}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_wav(out, report.agent_timeline(), rate)
        print(f"agent audio saved to {out} ({len(report.agent_audio)} frames)")
    note = await asyncio.to_thread(fetch_record, url, call_id, "note", 10.0, token)
    _print_note(note)
    return 0 if note is not None and not report.errors else 1


def cmd_call(args: argparse.Namespace, config: AppConfig) -> int:
    call_id = args.call_id or f"call-{uuid.uuid4().hex[:12]}"
    token = args.token or call_token_for(config, call_id)
    files = [Path(f) for f in args.files]
    return asyncio.run(run_call(args.url, files, call_id, args.out, args.split, args.rate, token))


# ------------------------------------------------------------------------------------------- demo
async def _demo(config: AppConfig, runtime: Runtime, out: Path) -> int:
    from gateway.server import Gateway
    from iasovoice.audio.files import write_wav
    from iasovoice.client import place_call
    from iasovoice.demo_audio import DEMO_TURNS, demo_turns

    gateway = Gateway(config, runtime.directory, runtime.storage, runtime.metrics)
    await gateway.start()
    url = f"ws://{config.server.host}:{gateway.port}"
    call_id = f"demo-{uuid.uuid4().hex[:8]}"
    rate = 8000
    print(f"\nDemo call {call_id}: the caller is real recorded speech ({', '.join(DEMO_TURNS)}),"
          f" streamed in 20 ms frames at real-time pace to {url}\n", flush=True)
    token = call_token_for(config, call_id)  # None with the embedded config's auth off
    report = await place_call(url, call_id, demo_turns(rate), rate, on_event=_print_event, token=token)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_wav(out, report.agent_timeline(), rate)
    latencies = [t.latency_s for t in report.turns if t.latency_s is not None]
    print(f"\nagent audio: {out} ({len(report.agent_audio) * 0.02:.1f} s); barge-in clears: {report.clears}")
    if latencies:
        print(f"voice-to-voice latency per caller turn (s): {', '.join(f'{x:.2f}' for x in latencies)}")
    note = await asyncio.to_thread(fetch_record, url, call_id, "note", 10.0, token)
    _print_note(note)
    await gateway.stop()
    return 0 if note is not None else 1


def cmd_demo(args: argparse.Namespace, config: AppConfig) -> int:
    from iasovoice.runtime import Runtime

    runtime = Runtime(config, progress=lambda m: print(f"… {m}", flush=True))
    try:
        runtime.start()
        return asyncio.run(_demo(config, runtime, args.out))
    finally:
        print("… shutting down Ray", flush=True)
        runtime.stop()


# ------------------------------------------------------------------------------------------- note
def cmd_note(args: argparse.Namespace, config: AppConfig) -> int:
    token = args.token or call_token_for(config, args.call_id)
    record = fetch_record(args.url, args.call_id, "transcript" if args.transcript else "note", token=token)
    if record is None:
        print(f"no {'transcript' if args.transcript else 'note'} stored for call {args.call_id}", file=sys.stderr)
        return 1
    print(json.dumps(record, indent=2))
    return 0


# ------------------------------------------------------------------------------------------ audit
def _open_audit_log(config: AppConfig) -> AuditLog:
    """The configured audit log, or a ConfigError naming `audit.path` (exit 2, before anything starts)."""
    from iasovoice.audit import AuditError, AuditLog
    from iasovoice.config import resolve_path
    from iasovoice.errors import ConfigError

    try:
        return AuditLog(resolve_path(config.audit.path))
    except AuditError as error:
        raise ConfigError(str(error)) from None


def _audit_line(entry: dict) -> str:
    actor = entry.get("actor")
    who = "unknown (refused token)" if actor is None else (
        ", ".join(f"{k}={v}" for k, v in actor.items()) or "anonymous (auth off)"
    )
    client = entry.get("client") or "-"
    if entry.get("forwarded_for"):
        client += f" (for {', '.join(entry['forwarded_for'])})"
    reason = f" ({entry['reason']})" if entry.get("reason") else ""
    return (f"{entry.get('seq', '?'):>6} {entry.get('time')} {entry.get('action')} {entry.get('record'):<10} "
            f"{entry.get('call_id') or '-'}: {entry.get('outcome')}{reason} by {who} from {client}")


def cmd_audit(args: argparse.Namespace, config: AppConfig) -> int:
    """Print the audit log of note and transcript reads; `--verify` checks its hash chain."""
    audit = _open_audit_log(config)
    if args.verify:
        result = audit.verify()
        if not result.ok:
            print(f"{audit.path}: chain broken at line {result.line}: {result.problem} "
                  f"({result.entries} entries before it verified)", file=sys.stderr)
            return 1
        print(f"{audit.path}: {result.entries} entries, chain intact; head {result.head}")
        return 0
    try:
        for entry in audit.entries():
            if args.call_id and entry.get("call_id") != args.call_id:
                continue
            print(json.dumps(entry) if args.json else _audit_line(entry))
    except ValueError:
        print(f"{audit.path}: a line is not a JSON entry; run `iasovoice audit --verify`", file=sys.stderr)
        return 1
    return 0


# ------------------------------------------------------------------------------------------ token
def cmd_token(args: argparse.Namespace, config: AppConfig) -> int:
    """Print a token that opens one call on a gateway with this config (HS256 secret, or RS256 private key)."""
    from gateway.auth import TokenRejected, mint_for_config
    from iasovoice.call_ids import InvalidCallIdError, validate_call_id

    try:
        validate_call_id(args.call_id)
    except InvalidCallIdError as error:
        print(f"iasovoice: {error}", file=sys.stderr)
        return 2
    attributes: dict[str, str] = {}
    for pair in args.attributes:
        name, sep, value = pair.partition("=")
        if not sep:
            print(f"iasovoice: --attr {pair!r} is not NAME=VALUE", file=sys.stderr)
            return 2
        attributes[name] = value
    try:
        token = mint_for_config(config.server.auth, args.call_id, args.ttl, private_key_file=args.private_key,
                                kid=args.kid, attributes=attributes)
    except TokenRejected as error:
        print(f"iasovoice: --attr: {error.message}", file=sys.stderr)
        return 2
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iasovoice", description=__doc__)
    parser.add_argument("--config", help="app.yaml (default: $IASOVOICE_CONFIG or configs/app.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set llm.reply_max_tokens=60")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (may include PHI)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start Ray, the models and the gateway; serve until Ctrl-C")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(handler=cmd_serve)

    call = sub.add_parser("call", help="place a call against a running server with recorded audio")
    call.add_argument("files", nargs="+", help="WAV/FLAC files; each is one caller turn (see --split)")
    call.add_argument("--url", default="ws://127.0.0.1:8080")
    call.add_argument("--call-id")
    call.add_argument("--token", help="per-call token (default: minted from server.auth's HS256 secret if set)")
    call.add_argument("--rate", type=int, default=8000, choices=(8000, 16000), help="line sample rate")
    call.add_argument("--split", action="store_true", help="cut each file into turns at its pauses")
    call.add_argument("--out", type=Path, default=Path("out/agent.wav"), help="where to save the agent's audio")
    call.set_defaults(handler=cmd_call)

    demo = sub.add_parser("demo", help="start everything, place one demo call with real speech, shut down")
    demo.add_argument("--out", type=Path, default=Path("out/demo_agent.wav"))
    demo.set_defaults(handler=cmd_demo)

    note = sub.add_parser("note", help="print the stored SOAP note (or transcript) of a call")
    note.add_argument("call_id")
    note.add_argument("--url", default="ws://127.0.0.1:8080")
    note.add_argument("--transcript", action="store_true")
    note.add_argument("--token", help="per-call token (default: minted from server.auth's HS256 secret if set)")
    note.set_defaults(handler=cmd_note)

    token = sub.add_parser("token", help="print a signed token (JWT) that opens one call on this config's gateway")
    token.add_argument("call_id")
    token.add_argument("--ttl", type=_positive_int, default=3600, metavar="S", help="lifetime in seconds (3600)")
    token.add_argument("--private-key", metavar="FILE",
                       help="RSA private key (PEM) that signs for server.auth.mode jwt-rs256; the gateway never holds it")
    token.add_argument("--kid", help="key id for the token header (jwt-rs256 with a JWKS file of several keys)")
    token.add_argument("--attr", dest="attributes", action="append", default=[], metavar="NAME=VALUE",
                       help="a call attribute signed into the token (repeatable), e.g. PatientId=P-1: it reaches the note")
    token.set_defaults(handler=cmd_token)

    audit = sub.add_parser("audit", help="print the audit log of note/transcript reads (audit.path)")
    audit.add_argument("--verify", action="store_true", help="check the hash chain; exit 1 if it is broken")
    audit.add_argument("--call-id", help="only the reads of this call")
    audit.add_argument("--json", action="store_true", help="the entries as stored (JSON lines)")
    audit.set_defaults(handler=cmd_audit)

    try:
        from iasovoice.aws.commands import register
    except ImportError:
        pass
    else:
        register(sub)
    from iasovoice.dialogue.eval_cli import register as register_eval

    register_eval(sub)
    try:
        from iasovoice.loadtest.cli import register as register_loadtest
    except ImportError:
        pass
    else:
        register_loadtest(sub)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        config = load_config(args.config, args.overrides)
        if hasattr(args, "aws_handler"):
            return int(args.aws_handler(args, config.connect))
        return int(args.handler(args, config))
    except IasoVoiceError as error:
        print(f"iasovoice: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
