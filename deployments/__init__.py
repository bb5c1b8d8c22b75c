"""Ray Serve deployments for the GPU-bound engines (speech-to-text and the LLM)."""

ASR_DEPLOYMENT = "WhisperASR"
LLM_DEPLOYMENT = "LLM"
INGRESS_DEPLOYMENT = "VoiceModels"
