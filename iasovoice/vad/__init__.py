"""Voice-activity detectors behind one Protocol: Silero (ONNX) for real calls, energy for tests."""

from iasovoice.vad.base import VoiceActivityDetector
from iasovoice.vad.energy import EnergyVAD
from iasovoice.vad.silero import SileroVAD

__all__ = ["EnergyVAD", "SileroVAD", "VoiceActivityDetector"]
