"""IasoVoice: a real-time telephony voice agent for medical phone calls."""

__version__ = "0.1.0"
