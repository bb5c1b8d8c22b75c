"""Benchmarks (`make bench` / `python -m bench`): platform overhead, capacity, memory, ASR batching, voice-to-voice."""
