"""Rasa custom actions for IasoVoice: run by the Rasa action server in its own environment."""
