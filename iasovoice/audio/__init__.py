"""Audio primitives: `pcm` (PCM/mu-law, framing), `resample`, `files` (WAV/FLAC I/O).

Nothing is re-exported here on purpose: every call actor process imports `pcm` and `resample`, and
importing `files` with them would load libsndfile and cffi into each of those processes for nothing.
"""
