"""Dialogue policy pieces that must stay deterministic: safety rules first, intents and slots beside them."""
