"""LoopbackSession: the call actor's diagnostics mode (`call.loopback: true`), an echo-test number.

Like a carrier's echo-test line it sends every caller frame straight back, in order and byte for byte,
with no greeting, VAD, jitter buffer or engines. It has `CallSession`'s `handle(event) -> actions`
interface so the call actor, the gateway and the transport run exactly as on a real call: what a
client measures from sending a frame to hearing it back is the platform's overhead alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from iasovoice.core import events as ev
from iasovoice.core.session import Phase, SessionSettings
from iasovoice.notes.schema import TranscriptTurn


@dataclass
class LoopbackStats:
    """The counters `CallActor.status` reports (the jitter stats' place in a real session)."""

    frames_echoed: int = 0


class LoopbackSession:
    def __init__(self, settings: SessionSettings) -> None:
        self.settings = settings
        self.phase = Phase.NEW
        self.barge_ins = 0
        self.jitter_stats = LoopbackStats()

    @property
    def transcript(self) -> list[TranscriptTurn]:
        return []  # an echo test says nothing worth keeping

    def handle(self, event: ev.Event) -> list[ev.Action]:
        match event:
            case ev.CallStarted():
                if self.phase == Phase.NEW:
                    self.phase = Phase.ACTIVE
            case ev.AudioReceived(samples=samples) if self.phase == Phase.ACTIVE:
                self.jitter_stats.frames_echoed += 1
                return [ev.SendAudio([samples])]
            case ev.HangupRequested() if self.phase in (Phase.NEW, Phase.ACTIVE):
                self.phase = Phase.ENDED
                return [ev.EndCall("completed")]
        return []
