"""Errors that carry enough context for an operator to fix the cause without reading a traceback."""

from __future__ import annotations


class IasoVoiceError(Exception):
    """Base class for every error IasoVoice raises on purpose."""


class ConfigError(IasoVoiceError):
    """The configuration is invalid; the message names the file and the key."""


class ModelNotFoundError(IasoVoiceError):
    """A model's weights are not on this machine.

    Weights are never downloaded at run time, so the fix is always a config key pointing at local
    weights (or installing the package that ships them); the message names that key.
    """

    def __init__(self, config_key: str, detail: str) -> None:
        self.config_key = config_key
        self.detail = detail
        super().__init__(f"{detail} Set `{config_key}` in configs/app.yaml to a local path.")


class AudioFormatError(IasoVoiceError, ValueError):
    """Audio bytes that cannot be interpreted in the declared format."""


class ProtocolError(IasoVoiceError):
    """A client message that breaks the gateway protocol.

    `close_code` is the WebSocket close code the gateway uses when the error is fatal for the
    connection (RFC 6455: 1003 unsupported data, 1007 invalid payload, 1008 policy, 1009 too big).
    `kind` is a short fixed label (never client text) the gateway counts by in its metrics.
    """

    def __init__(self, message: str, close_code: int = 1007, fatal: bool = False, kind: str = "invalid") -> None:
        self.close_code = close_code
        self.fatal = fatal
        self.kind = kind
        super().__init__(message)


class StorageError(IasoVoiceError):
    """Notes or transcripts could not be stored or read."""


class ShuttingDownError(IasoVoiceError):
    """The server is draining (SIGTERM): live calls finish, new ones go elsewhere (close 1013)."""


class AtCapacityError(IasoVoiceError):
    """The cluster already carries `call.max_active_calls` calls; a new one is refused, not squeezed in.

    Past a node's capacity every call's audio degrades at once (docs/performance.md, bench 2), so the
    gateway refuses the extra call with close code 1013 (try again later) and the carrier's flow can
    route it to a person instead.
    """
