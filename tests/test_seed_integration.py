"""The seed's "Step 10: Integration Testing" script, run as written against the local server.

Only its URL (the local gateway, with the per-call token the server requires) and its three helpers
are adapted: `initiate_outbound_call` goes through IasoVoice's real outbound-call code with Amazon
Connect stubbed by botocore's Stubber (no AWS endpoint is reachable here), `load_test_audio` loads a
real human recording as raw 8 kHz 16-bit PCM, and `get_soap_note_for_call` polls the gateway's
`GET /calls/{call_id}/note` route.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from iasovoice.audio.files import load_audio
from iasovoice.audio.pcm import array_to_pcm16
from iasovoice.demo_audio import AUDIO_DIR
from iasovoice.notes.schema import SoapNote
from tests.connect_stub import stubbed_outbound_call
from tests.server import RunningServer

pytestmark = pytest.mark.e2e


def _helpers(server: RunningServer):
    def initiate_outbound_call(phone_number: str, patient_id: str) -> str:
        return stubbed_outbound_call(phone_number, patient_id)

    def load_test_audio(name: str) -> bytes:
        # The seed names "medical-dictation.wav"; no licensed medical recording exists, so a real human
        # recording stands in: the TIMIT sample sentence at telephone rate.
        return array_to_pcm16(load_audio(AUDIO_DIR / "LDC93S1_8k.wav", 8000))

    def get_soap_note_for_call(call_id: str) -> dict | None:
        return server.note(call_id, timeout_s=180)

    return initiate_outbound_call, load_test_audio, get_soap_note_for_call


def test_seed_integration_script(server: RunningServer) -> None:
    initiate_outbound_call, load_test_audio, get_soap_note_for_call = _helpers(server)

    async def test_iasovoice_integration():
        """Test complete flow from Connect to SOAP note"""

        # 1. Initiate test call
        call_id = initiate_outbound_call("+1234567890", "test-patient-123")

        # 2. Connect to WebSocket
        uri = server.connect_url(call_id)
        async with websockets.connect(uri) as websocket:
            # 3. Send test audio
            test_audio = load_test_audio("medical-dictation.wav")
            await websocket.send(json.dumps({
                "type": "audio",
                "data": base64.b64encode(test_audio).decode()
            }))

            # 4. Receive response
            response = await websocket.recv()
            assert json.loads(response)["type"] == "audio"

        # 5. Verify SOAP note created
        soap_note = get_soap_note_for_call(call_id)
        assert soap_note is not None
        print(f"Test passed! SOAP note created for call {call_id}")
        return call_id, soap_note

    call_id, soap_note = asyncio.run(test_iasovoice_integration())
    # Beyond the seed: the note is schema-valid and carries the audio the caller sent before hanging up.
    note = SoapNote.model_validate(soap_note)
    assert note.call_id == call_id
    caller_text = " ".join(turn.text.lower() for turn in note.transcript if turn.role == "caller")
    assert "suit" in caller_text and "water" in caller_text
    assert "partial_utterance_at_hangup" in note.flags
