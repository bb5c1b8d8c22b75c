"""A scripted-call harness for the I/O-free CallSession: a fake clock, real audio, recorded actions.

Engine results (transcripts, reply text, synthesized audio) are injected as the events the call actor
would deliver; that is the session's real input, not a mock of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iasovoice.audio.files import load_audio
from iasovoice.config import load_config
from iasovoice.core import events as ev
from iasovoice.core.session import CallSession, FallbackScripts, SafetySettings, SessionSettings
from iasovoice.demo_audio import AUDIO_DIR
from iasovoice.vad.silero import SileroVAD

FRAME_S = 0.02


def safety_settings() -> SafetySettings:
    """The shipped safety scripts (configs/app.yaml), so tests hear what callers hear."""
    safety = load_config().dialogue.safety
    return SafetySettings(safety.emergency_message, safety.crisis_message)


def fallback_scripts() -> FallbackScripts:
    """The shipped fallback scripts (configs/app.yaml: call.scripts)."""
    return FallbackScripts(**load_config().call.scripts.model_dump())


def recording(name: str, rate: int = 8000) -> np.ndarray:
    return load_audio(AUDIO_DIR / name, rate)


def silence(seconds: float, rate: int = 8000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


@dataclass
class Timeline:
    session: CallSession
    now: float = 100.0
    seq: int = 0
    log: list[tuple[float, ev.Action]] = field(default_factory=list)

    @classmethod
    def start(cls, rate: int = 8000, greet: bool = True, **settings: object) -> Timeline:
        """A call that has started; with `greet`, the greeting's audio (0.5 s) is delivered and played."""
        settings.setdefault("safety", safety_settings())
        settings.setdefault("scripts", fallback_scripts())
        settings.setdefault("greeting", load_config().call.greeting)
        session = CallSession(SessionSettings(call_id="t-call", sample_rate=rate, **settings), SileroVAD(rate))
        timeline = cls(session)
        timeline.apply(ev.CallStarted(timeline.now))
        if greet:
            for action in timeline.of_type(ev.Synthesize):
                timeline.apply(ev.SpeechReady(action.reply_id, action.segment, silence(0.5 / 2, rate), timeline.now))
            timeline.wait(0.6)
        return timeline

    def apply(self, event: ev.Event) -> list[ev.Action]:
        actions = self.session.handle(event)
        self.log.extend((self.now, action) for action in actions)
        return actions

    def frames(self, samples: np.ndarray) -> list[np.ndarray]:
        n = int(self.session.settings.sample_rate * FRAME_S)
        usable = len(samples) - len(samples) % n
        return [samples[i:i + n] for i in range(0, usable, n)]

    def speak(self, samples: np.ndarray) -> list[tuple[int, list[ev.Action]]]:
        """Caller audio in real time: one frame every 20 ms; returns (frame index, actions) per frame."""
        out = []
        for index, frame in enumerate(self.frames(samples)):
            self.now += FRAME_S
            out.append((index, self.apply(ev.AudioReceived(self.seq, frame, self.now))))
            self.seq += 1
        return out

    def wait(self, seconds: float) -> list[ev.Action]:
        actions: list[ev.Action] = []
        for _ in range(round(seconds / FRAME_S)):
            self.now += FRAME_S
            actions += self.apply(ev.Tick(self.now))
        return actions

    def of_type(self, kind: type) -> list:
        return [action for _, action in self.log if isinstance(action, kind)]
