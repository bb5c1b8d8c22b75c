"""The call's attributes, signed into its token by whoever holds the contact, reach the note verbatim.

On a real `iasovoice serve` (stand-in engines: the whole call path in seconds, no models): a call whose
token carries Connect-style contact attributes gets them into its stored note; a token whose attributes
are not a map of short strings is refused at the door with its reason, before any audio.
"""

from __future__ import annotations

import asyncio
import time

import jwt

from gateway.auth import ATTRIBUTES_CLAIM, TokenVerifier, call_attributes
from iasovoice.audio.files import load_audio
from iasovoice.cli import main as cli_main
from iasovoice.client import place_call
from iasovoice.config import load_config
from tests.gateway_calls import refused
from tests.paths import REPO, REPO_AUDIO
from tests.server import SECRET, SECRET_ENV, RunningServer

CONTACT = {"PatientId": "P-0042", "Authenticated": "true", "CallType": "Inbound", "PreferredName": "Sam"}


def test_the_tokens_attributes_are_in_the_note(standin_server: RunningServer) -> None:
    call_id = "attributes-call"
    speech = load_audio(REPO_AUDIO / "LDC93S1_8k.wav", 8000)
    token = standin_server.token(call_id, CONTACT)
    report = asyncio.run(place_call(standin_server.url, call_id, [speech], 8000, token=token))
    assert report.errors == [] and report.note_ready, standin_server.log_tail()
    note = standin_server.note(call_id)
    assert note is not None
    assert note["call_attributes"] == CONTACT
    assert note["model"] == "standin" and note["prompt_version"]


def test_a_token_with_unusable_attributes_opens_nothing(standin_server: RunningServer) -> None:
    call_id = "bad-attributes-call"
    now = int(time.time())
    for attributes in ({"PatientId": 42}, ["P-1"], {"Patient Id": "P-1"}, {"Note": "x" * 300}):
        forged_well = jwt.encode({"sub": call_id, "iat": now, "exp": now + 60, ATTRIBUTES_CLAIM: attributes},
                                 SECRET.encode(), algorithm="HS256")
        code, reason = asyncio.run(refused(f"{standin_server.url}/connect/{call_id}",
                                           {"Authorization": f"Bearer {forged_well}"}))
        assert (code, reason) == (1008, "token's call attributes are not a map of short strings"), attributes


def test_the_token_command_signs_attributes_the_gateway_reads(capsys, monkeypatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    config = ["--set", "server.auth.mode=jwt-hs256", "--set", f"server.auth.secret_env={SECRET_ENV}"]
    assert cli_main([*config, "token", "cli-call", "--attr", "PatientId=P-7", "--attr", "CallType=Outbound"]) == 0
    token = capsys.readouterr().out.strip()
    auth = load_config(REPO / "configs" / "app.yaml").server.auth.model_copy(
        update={"mode": "jwt-hs256", "secret_env": SECRET_ENV})
    claims = TokenVerifier(auth).verify("cli-call", token)
    assert call_attributes(claims) == {"PatientId": "P-7", "CallType": "Outbound"}
    assert cli_main([*config, "token", "cli-call", "--attr", "no-equals-sign"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
