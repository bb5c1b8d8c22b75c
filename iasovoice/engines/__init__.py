"""Model engines (ASR, LLM, TTS) behind narrow seams; Ray Serve deployments and IO actors wrap them."""
