"""The thin websocket gateway: `/connect/{call_id}` ↔ that call's actor. It holds no call state."""
