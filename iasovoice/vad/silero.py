"""Silero VAD v6 run directly with onnxruntime + numpy (no torch), replicating silero_vad.OnnxWrapper.

The model consumes 256-sample chunks at 8 kHz (512 at 16 kHz) with the previous chunk's last 32 (64) samples
prepended as context and an LSTM state carried between calls. Telephone frames are 20 ms (160/320 samples),
so frames are buffered until a chunk is full; that is 0.625 model runs per frame on average.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from iasovoice.errors import AudioFormatError, ModelNotFoundError

_CHUNK = {8000: 256, 16000: 512}
_CONTEXT = {8000: 32, 16000: 64}
_MODEL_FILE = "silero_vad.onnx"


def default_model_path() -> Path:
    """The ONNX file inside the installed silero-vad wheel, found without importing the package (which
    imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "vad.model_path",
            "Silero VAD weights not found: the silero-vad package is not installed "
            "(pip install --no-deps silero-vad==6.2.3).",
        )
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "data" / _MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError("vad.model_path", f"silero-vad is installed but has no data/{_MODEL_FILE}.")


@lru_cache(maxsize=8)
def _session(path: str, num_threads: int) -> ort.InferenceSession:
    """One session per process, shared by every call: Run() is thread-safe and the recurrent state is an
    explicit input, so hundreds of calls cost one copy of the weights and one load."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = num_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads would burn the few cores shared by many concurrent calls.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


class SileroVAD:
    """Per-call Silero detector; feed 20 ms int16 frames, get the newest chunk's speech probability."""

    def __init__(self, sample_rate: int, model_path: str | Path | None = None, num_threads: int = 1) -> None:
        if sample_rate not in _CHUNK:
            raise AudioFormatError(f"Silero VAD supports 8000 and 16000 Hz, got {sample_rate}")
        path = Path(model_path).expanduser() if model_path is not None else default_model_path()
        if not path.is_file():
            raise ModelNotFoundError("vad.model_path", f"Silero VAD model file not found at {path}.")
        self.sample_rate = sample_rate
        self.model_path = path
        self._session = _session(str(path.resolve()), int(num_threads))
        self._chunk = _CHUNK[sample_rate]
        self._ctx = _CONTEXT[sample_rate]
        self._sr = np.array(sample_rate, dtype=np.int64)
        # [context | chunk] as one contiguous model input, refilled in place: no per-frame allocation.
        self._input = np.zeros((1, self._ctx + self._chunk), dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._fill = 0
        self._prob = 0.0

    def reset(self) -> None:
        self._input[:] = 0.0
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._fill = 0
        self._prob = 0.0

    def __call__(self, frame: np.ndarray) -> float:
        a = np.asarray(frame)
        if a.ndim != 1:
            raise AudioFormatError(f"VAD expects a mono 1-D frame, got shape {a.shape}")
        if a.dtype == np.int16:
            x = a.astype(np.float32) * np.float32(1.0 / 32768.0)
        elif a.dtype.kind == "f":
            x = a.astype(np.float32, copy=False)
        else:
            raise AudioFormatError(f"VAD expects int16 (or float [-1, 1]) samples, got {a.dtype}")
        buf, ctx, pos = self._input[0], self._ctx, 0
        while pos < len(x):
            take = min(self._chunk - self._fill, len(x) - pos)
            buf[ctx + self._fill : ctx + self._fill + take] = x[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self._chunk:
                self._run()
        return self._prob

    def _run(self) -> None:
        out, self._state = self._session.run(
            None, {"input": self._input, "state": self._state, "sr": self._sr}
        )
        self._prob = float(out[0, 0])
        buf = self._input[0]
        buf[: self._ctx] = buf[-self._ctx :]
        self._fill = 0
