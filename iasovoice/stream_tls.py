"""The TLS contexts of the gateway → call actor audio stream (`server.stream_tls`), built from config.

The stream (`actors/stream_server.py`, `gateway/links.py`) carries the caller's voice between nodes.
With `mode: tls` both ends authenticate: the actor's listener demands a client certificate signed by
`ca_file` (so only the gateway gets as far as the per-call hello token), and the gateway checks the
actor's certificate against `ca_file` and `server_name` (so audio never goes to an impostor that took
over the node's IP). Only TLS 1.2 and later are accepted, and only `ca_file` is trusted, never the
system's roots: any CA a public or corporate authority runs would let its holders in.

With `mode: off` this module is also where clear text is allowed or refused for a given listening
address: loopback always, a private address only when the operator stated `private_network: true`.

Everything here is pure: no Ray, no sockets; a bad file raises `ConfigError` naming its config key.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from pathlib import Path

from iasovoice.config import StreamTLSConfig, resolve_path
from iasovoice.errors import ConfigError

_KEY = "server.stream_tls"


def server_context(tls: StreamTLSConfig, host: str) -> ssl.SSLContext | None:
    """The context for a call actor's listener on `host`; None means plain TCP, allowed there.

    Built for each listener (one per call, in the actor's own process), so a renewed certificate is
    used by the next call without a restart.
    """
    if tls.mode == "off":
        _check_clear_text_allowed(tls, host)
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: no client certificate, no stream
    _load(context, tls)
    return context


@functools.lru_cache(maxsize=8)
def client_context(tls: StreamTLSConfig) -> ssl.SSLContext | None:
    """The gateway's context for every call's stream; None for plain TCP (`mode: off`).

    Cached per config: the gateway opens a stream per call, and reading the files for each would put
    disk reads on the path that answers a caller. So a renewed gateway certificate or CA takes a
    gateway restart (docs/security.md). `iasovoice/runtime.py` builds it before anything starts, so a
    missing or bad file stops `serve` with the key named instead of failing the first call.
    """
    if tls.mode == "off":
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname are its defaults
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(context, tls)
    return context


def _check_clear_text_allowed(tls: StreamTLSConfig, host: str) -> None:
    """Refuse a clear-text listener off loopback unless the operator stated, and the address shows, a private network.

    `AppConfig` already refuses a cluster config without TLS or the statement; this is the check on
    the address the listener really gets, on the node that gets it.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{_KEY}.mode is off and the call stream's listening address {host!r} is not an IP address that can "
            "be checked to be loopback or private; set server.stream_tls.mode: tls"
        ) from None
    if address.is_loopback:
        return
    if not tls.private_network:
        raise ConfigError(
            f"the call audio stream would listen on {host} in clear text; set {_KEY}.mode: tls "
            f"(cert_file/key_file/ca_file) or {_KEY}.private_network: true if the cluster's network is private"
        )
    if not address.is_private:
        raise ConfigError(
            f"{_KEY}.private_network is true, but this node's address {host} is not a private one, so the call "
            f"audio stream would leave the private network in clear text; set {_KEY}.mode: tls"
        )


def _load(context: ssl.SSLContext, tls: StreamTLSConfig) -> None:
    """Trust only `ca_file` and present `cert_file`/`key_file`; each failure names its key."""
    cert = _readable("cert_file", tls.cert_file)
    key = _readable("key_file", tls.key_file)
    ca = _readable("ca_file", tls.ca_file)
    try:
        context.load_verify_locations(cafile=str(ca))
    except ssl.SSLError as error:
        raise ConfigError(f"{_KEY}.ca_file: {ca} holds no usable PEM CA certificate ({_reason(error)})") from None
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_password)
    except ssl.SSLError as error:
        raise ConfigError(
            f"{_KEY}.cert_file / {_KEY}.key_file: {cert} and {key} are not a PEM certificate and its matching "
            f"unencrypted private key ({_reason(error)})"
        ) from None


def _readable(name: str, value: str | None) -> Path:
    if not value:
        raise ConfigError(f"{_KEY}.{name} is not set; mode tls needs it")
    path = resolve_path(value)
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise ConfigError(f"{_KEY}.{name}: cannot read {path} ({error.strerror or type(error).__name__})") from None
    return path


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key, hanging a server.
    raise ConfigError(f"{_KEY}.key_file is encrypted; it must be an unencrypted PEM key (mode 0600)")


def _reason(error: ssl.SSLError) -> str:
    return str(error.reason or error.strerror or error)
