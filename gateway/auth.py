"""Per-call tokens: signed, expiring JWTs whose `sub` is the one call id they open.

Whoever places or receives the call (the Lambda or media bridge that knows the ContactId, a dialer, the
CLI) mints a token for that id; the gateway checks it on `/connect/{call_id}` and on the
`/calls/{call_id}/note|transcript` routes, so a token opens one call and reads that call's records,
never another's, and stops working at `exp`.

- `jwt-hs256`: one shared secret (>= 32 bytes, RFC 7518 §3.2) in an env var; simple, but whoever can
  check a token can also mint one.
- `jwt-rs256`: the gateway holds only the public key (a PEM file, or a local JWKS file whose keys are
  picked by the token's `kid`); the signer keeps the private key. The files are re-read when they
  change on disk, so a key can be added, used and retired without a restart (docs/security.md).
  Nothing is ever fetched over the network.

Only the configured algorithm is accepted (an HS256 token never passes an RS256 gateway or the other
way round), `sub` and `exp` are required, `aud`/`iss` are checked when configured, and every refusal
carries a short fixed reason, used as the metric label and (as words) as the close reason.

The optional `attrs` claim carries the call's attributes (Amazon Connect contact attributes such as
`PatientId`, `Authenticated`, `CallType`), which go to the call and verbatim into its note. They ride in
the signed token because only the minter (the Lambda or bridge that holds the contact) knows them and a
caller must not be able to forge them; they are PHI, so a token carrying them belongs in the
`Authorization` header, not the query string.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from iasovoice.call_ids import validate_call_id
from iasovoice.config import AuthConfig, resolve_path
from iasovoice.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_TTL_S = 3600
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 8192  # a real token is a few hundred characters; do not parse megabytes of header
ATTRIBUTES_CLAIM = "attrs"
MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_CHARS = 256
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
ALGORITHMS = {"jwt-hs256": "HS256", "jwt-rs256": "RS256"}
# PyJWT's errors as rejection reasons, most specific first (some are subclasses of later ones).
_JWT_REJECTIONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.InvalidAlgorithmError, "bad_algorithm"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.DecodeError, "malformed"),
)


def _rejection_reason(error: jwt.PyJWTError) -> str:
    return next((reason for kind, reason in _JWT_REJECTIONS if isinstance(error, kind)), "invalid")

# Reason label -> the words a client sees (websocket close reason, or the 401 body's "error").
REJECTION_REASONS: dict[str, str] = {
    "missing": "missing token",
    "malformed": "malformed token",
    "bad_signature": "bad signature",
    "expired": "token expired",
    "not_yet_valid": "token not yet valid",
    "wrong_call": "token for another call",
    "missing_claim": "token lacks a required claim",
    "wrong_audience": "token for another audience",
    "wrong_issuer": "token from another issuer",
    "bad_algorithm": "token algorithm not accepted",
    "unknown_key": "token signed by an unknown key",
    "bad_attributes": "token's call attributes are not a map of short strings",
    "invalid": "invalid token",
}


class AuthSetupError(ConfigError):
    """Key material named by `server.auth` is missing or unusable; the gateway does not start without it."""


class TokenRejected(Exception):
    """A request's token does not open this call; `reason` is a key of REJECTION_REASONS."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        self.reason = reason
        self.message = detail or REJECTION_REASONS[reason]
        super().__init__(self.message)


# ------------------------------------------------------------------------------------------ minting
def mint_token(
    call_id: str,
    key: Any,
    algorithm: str,
    ttl_s: float = DEFAULT_TTL_S,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    kid: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """A token that opens `call_id` for `ttl_s` seconds from now (key: secret bytes or an RSA private key),
    carrying the call's `attributes` when given (checked here as the gateway will check them)."""
    if ttl_s <= 0:
        raise ValueError(f"token lifetime must be positive, got {ttl_s}")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": validate_call_id(call_id), "iat": now, "exp": now + int(ttl_s)}
    if attributes:
        claims[ATTRIBUTES_CLAIM] = call_attributes({ATTRIBUTES_CLAIM: dict(attributes)})
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def call_token(
    secret: bytes,
    call_id: str,
    ttl_s: int = DEFAULT_TTL_S,
    *,
    audience: str | None = None,
    issuer: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """An HS256 token for one call (what tests, the CLI and the load tester mint with a shared secret)."""
    return mint_token(
        call_id, _checked_secret(secret), "HS256", ttl_s, audience=audience, issuer=issuer, attributes=attributes
    )


def call_attributes(claims: Mapping[str, Any]) -> dict[str, str]:
    """The verified token's call attributes ({} without the claim); TokenRejected("bad_attributes") when
    they are not at most 32 names (a letter, then letters, digits, `_.-`) of strings of at most 256
    characters: a minter's bug, refused whole rather than half-read into a clinical note."""
    attributes = claims.get(ATTRIBUTES_CLAIM)
    if attributes is None:
        return {}
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise TokenRejected("bad_attributes")
    for name, value in attributes.items():
        if not _ATTRIBUTE_NAME.fullmatch(name) or not isinstance(value, str) or len(value) > MAX_ATTRIBUTE_CHARS:
            raise TokenRejected("bad_attributes")
    return dict(attributes)


def hs256_secret(auth: AuthConfig, environ: Mapping[str, str] = os.environ) -> bytes:
    """The shared secret named by `server.auth.secret_env`, refused when unset or too short."""
    name = auth.secret_env
    value = environ.get(name) if name else None
    if not value:
        raise AuthSetupError(f"server.auth.mode is jwt-hs256 but ${name} (server.auth.secret_env) is not set")
    try:
        return _checked_secret(value.encode())
    except ValueError as error:
        raise AuthSetupError(f"${name}: {error}") from None


def mint_for_config(
    auth: AuthConfig,
    call_id: str,
    ttl_s: float = DEFAULT_TTL_S,
    *,
    private_key_file: str | Path | None = None,
    kid: str | None = None,
    environ: Mapping[str, str] = os.environ,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """A token the gateway configured by `auth` accepts (with its `aud`/`iss`), as `iasovoice token` prints."""
    if auth.mode == "off":
        raise AuthSetupError("server.auth.mode is off: the gateway takes no token")
    if auth.mode == "jwt-hs256":
        if private_key_file is not None:
            raise AuthSetupError("server.auth.mode is jwt-hs256: tokens are signed with the shared secret, not a key file")
        key: Any = hs256_secret(auth, environ)
    else:
        if private_key_file is None:
            raise AuthSetupError(
                "server.auth.mode is jwt-rs256: minting needs the RSA private key, which the gateway never holds; "
                "pass --private-key FILE (PEM)"
            )
        key = _load_private_key(Path(private_key_file))
    return mint_token(
        call_id, key, ALGORITHMS[auth.mode], ttl_s, audience=auth.audience, issuer=auth.issuer, kid=kid,
        attributes=attributes,
    )


def _checked_secret(secret: bytes) -> bytes:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"an HS256 secret needs at least {MIN_SECRET_BYTES} bytes, got {len(secret)}")
    return secret


def _load_private_key(path: Path) -> RSAPrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise AuthSetupError(f"cannot load the RSA private key {path}: {error}") from None
    if not isinstance(key, RSAPrivateKey):
        raise AuthSetupError(f"{path} is not an RSA private key")
    return key


# -------------------------------------------------------------------------------------- checking
def token_from_request(headers: Mapping[str, str] | None, query: Mapping[str, str] | None) -> str | None:
    """`Authorization: Bearer <jwt>` first (it stays out of URLs and access logs), else `?token=`."""
    header = (headers or {}).get("Authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return (query or {}).get("token") or None


class _WatchedFile:
    """A key file parsed once and again whenever it changes on disk (key rotation without a restart).

    A change that does not parse (a half-written file, a bad key) keeps the last good keys and logs an
    error, so a botched rotation never locks every caller out at once.
    """

    def __init__(self, path: Path, parse: Callable[[bytes, Path], dict[str | None, RSAPublicKey]]) -> None:
        self._path = path
        self._parse = parse
        self._stamp = self._stat()
        try:
            self.keys = parse(path.read_bytes(), path)
        except OSError as error:
            raise AuthSetupError(f"cannot read {path}: {error}") from None

    def _stat(self) -> tuple[int, int, int]:
        try:
            info = self._path.stat()
        except OSError as error:
            raise AuthSetupError(f"cannot read {self._path}: {error}") from None
        return info.st_mtime_ns, info.st_size, info.st_ino  # inode: a new file renamed into place

    def current(self) -> dict[str | None, RSAPublicKey]:
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                self.keys = self._parse(self._path.read_bytes(), self._path)
                log.info("auth: reloaded %s (%d key(s))", self._path, len(self.keys))
        except (AuthSetupError, OSError) as error:
            log.error("auth: keeping the previous keys; %s", error)
        return self.keys


def _parse_pem(data: bytes, path: Path) -> dict[str | None, RSAPublicKey]:
    try:
        key = load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise AuthSetupError(f"{path} is not a PEM public key: {error}") from None
    if not isinstance(key, RSAPublicKey):
        raise AuthSetupError(f"{path} is not an RSA public key")
    return {None: key}


def _parse_jwks(data: bytes, path: Path) -> dict[str | None, RSAPublicKey]:
    try:
        document = json.loads(data)
    except ValueError as error:
        raise AuthSetupError(f"{path} is not JSON: {error}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AuthSetupError(f'{path} is not a JWKS document: expected an object with a "keys" list')
    keys: dict[str | None, RSAPublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        if entry.get("alg", "RS256") != "RS256":
            continue
        kid = entry.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthSetupError(f"{path}: a key's kid must be a string, got {kid!r}")
        if "d" in entry:
            raise AuthSetupError(f"{path} holds a private key (kid {kid!r}); the gateway needs public keys only")
        try:
            key = jwt.PyJWK(entry, "RS256").key
        except jwt.PyJWTError as error:
            raise AuthSetupError(f"{path}: unusable key {kid!r}: {error}") from None
        keys[kid] = key
    if not keys:
        raise AuthSetupError(f"{path} has no RSA signing key (kty RSA, use sig, alg RS256)")
    return keys


@dataclass(frozen=True)
class _Checks:
    algorithm: str
    audience: str | None
    issuer: str | None
    leeway_s: float


class TokenVerifier:
    """Checks a request's token against the call id in its path; built once at gateway start."""

    def __init__(self, auth: AuthConfig, environ: Mapping[str, str] = os.environ) -> None:
        self.mode = auth.mode
        self._secret: bytes | None = None
        self._keys: _WatchedFile | None = None
        if auth.mode == "off":
            return
        self._checks = _Checks(ALGORITHMS[auth.mode], auth.audience, auth.issuer, auth.leeway_s)
        if auth.mode == "jwt-hs256":
            self._secret = hs256_secret(auth, environ)
        elif auth.public_key_file is not None:
            self._keys = _WatchedFile(resolve_path(auth.public_key_file), _parse_pem)
        else:
            assert auth.jwks_file is not None  # AuthConfig requires one of the two
            self._keys = _WatchedFile(resolve_path(auth.jwks_file), _parse_jwks)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def verify(self, call_id: str, token: str | None) -> dict[str, Any]:
        """The token's claims if it opens `call_id`; TokenRejected (with its reason) otherwise."""
        if not self.enabled:
            return {}
        if not token:
            raise TokenRejected("missing")
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("malformed")
        claims: dict[str, Any] | None = None
        for key in self._candidate_keys(token):
            try:
                claims = self._decode(token, key)
                break
            except TokenRejected as rejected:
                if rejected.reason != "bad_signature":
                    raise
        if claims is None:
            raise TokenRejected("bad_signature")
        if claims.get("sub") != call_id:
            raise TokenRejected("wrong_call")
        call_attributes(claims)  # a token whose attributes cannot be used opens nothing
        return claims

    def _candidate_keys(self, token: str) -> list[Any]:
        if self._secret is not None:
            return [self._secret]
        assert self._keys is not None
        keys = self._keys.current()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed") from None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("malformed")
        if kid is None:
            return list(keys.values())  # one PEM key, or a JWKS without kids in the token: try each
        if kid not in keys:
            raise TokenRejected("unknown_key")
        return [keys[kid]]

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        checks = self._checks
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[checks.algorithm],
                audience=checks.audience,
                issuer=checks.issuer,
                leeway=checks.leeway_s,
                options={
                    "require": ["sub", "exp"],
                    "verify_aud": checks.audience is not None,
                    "verify_iss": checks.issuer is not None,
                },
            )
        except jwt.MissingRequiredClaimError as error:
            raise TokenRejected("missing_claim", f"token lacks the {error.claim!r} claim") from None
        except jwt.PyJWTError as error:
            raise TokenRejected(_rejection_reason(error)) from None
