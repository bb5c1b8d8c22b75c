"""Call tokens without a server: every refusal reason, RS256 key files, the config rules, the start warning."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.auth import (
    AuthSetupError,
    TokenRejected,
    TokenVerifier,
    call_token,
    hs256_secret,
    mint_for_config,
    token_from_request,
)
from iasovoice.config import AuthConfig, ServerConfig, load_config
from iasovoice.errors import ConfigError
from tests.server import STANDIN_ECHO

SECRET = "unit-test-secret-0123456789abcdef"
ENV = {"CALL_SECRET": SECRET}
HS = AuthConfig(mode="jwt-hs256", secret_env="CALL_SECRET")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _reason(verifier: TokenVerifier, call_id: str, token: str | None) -> str:
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(call_id, token)
    return rejected.value.reason


def _hs(claims: dict, secret: str = SECRET, **kwargs: object) -> str:
    return jwt.encode(claims, secret.encode(), algorithm="HS256", **kwargs)


# ------------------------------------------------------------------------------------------ HS256
def test_hs256_round_trip_and_every_refusal() -> None:
    verifier = TokenVerifier(HS, ENV)
    now = int(time.time())
    token = call_token(SECRET.encode(), "call-1")
    claims = verifier.verify("call-1", token)
    assert claims["sub"] == "call-1" and claims["exp"] - claims["iat"] == 3600
    assert _reason(verifier, "call-1", None) == "missing"
    assert _reason(verifier, "call-2", token) == "wrong_call"
    assert _reason(verifier, "call-1", _hs({"sub": "call-1", "exp": now + 60}, "another-secret-0123456789abcdefgh")) == (
        "bad_signature"
    )
    assert _reason(verifier, "call-1", _hs({"sub": "call-1", "exp": now - 120})) == "expired"
    assert _reason(verifier, "call-1", _hs({"sub": "call-1"})) == "missing_claim"
    assert _reason(verifier, "call-1", _hs({"exp": now + 60})) == "missing_claim"
    assert _reason(verifier, "call-1", _hs({"sub": "call-1", "exp": now + 60, "nbf": now + 600})) == "not_yet_valid"
    assert _reason(verifier, "call-1", "0" * 64) == "malformed"  # the old hex HMAC format
    assert _reason(verifier, "call-1", "x" * 10_000) == "malformed"
    unsigned = jwt.encode({"sub": "call-1", "exp": now + 60}, None, algorithm="none")
    assert _reason(verifier, "call-1", unsigned) == "bad_algorithm"


def test_leeway_and_audience_issuer_when_configured() -> None:
    now = int(time.time())
    just_expired = _hs({"sub": "c", "exp": now - 10})
    assert TokenVerifier(HS, ENV).verify("c", just_expired)["sub"] == "c"  # 30 s leeway by default
    assert _reason(TokenVerifier(HS.model_copy(update={"leeway_s": 0}), ENV), "c", just_expired) == "expired"
    strict = TokenVerifier(HS.model_copy(update={"audience": "iaso", "issuer": "bridge"}), ENV)
    assert strict.verify("c", _hs({"sub": "c", "exp": now + 60, "aud": "iaso", "iss": "bridge"}))
    assert _reason(strict, "c", _hs({"sub": "c", "exp": now + 60, "aud": "other", "iss": "bridge"})) == "wrong_audience"
    assert _reason(strict, "c", _hs({"sub": "c", "exp": now + 60, "aud": "iaso", "iss": "other"})) == "wrong_issuer"
    assert _reason(strict, "c", _hs({"sub": "c", "exp": now + 60})) == "missing_claim"
    # Without configured aud/iss a token carrying them is not refused for it.
    assert TokenVerifier(HS, ENV).verify("c", _hs({"sub": "c", "exp": now + 60, "aud": "x", "iss": "y"}))


def test_short_or_missing_secrets_are_refused_at_start() -> None:
    with pytest.raises(AuthSetupError, match="CALL_SECRET"):
        TokenVerifier(HS, {})
    with pytest.raises(AuthSetupError, match="at least 32 bytes"):
        hs256_secret(HS, {"CALL_SECRET": "short"})
    with pytest.raises(ValueError, match="at least 32 bytes"):
        call_token(b"secret", "call-1")


def test_token_from_request_prefers_the_bearer_header() -> None:
    assert token_from_request({"Authorization": "Bearer abc"}, {"token": "q"}) == "abc"
    assert token_from_request({"Authorization": "bearer  abc "}, None) == "abc"
    assert token_from_request({"Authorization": "Basic dXNlcg=="}, {"token": "q"}) == "q"
    assert token_from_request(None, {"token": ""}) is None


def test_mint_for_config_matches_the_verifier(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    aud = HS.model_copy(update={"audience": "iaso", "issuer": "bridge"})
    token = mint_for_config(aud, "call-7", 60, environ=ENV)
    assert TokenVerifier(aud, ENV).verify("call-7", token)["aud"] == "iaso"
    with pytest.raises(AuthSetupError, match="off"):
        mint_for_config(AuthConfig(mode="off", allow_unauthenticated=True), "call-7")
    pem = _write_public_pem(tmp_path, rsa_key)
    rs = AuthConfig(mode="jwt-rs256", public_key_file=str(pem))
    with pytest.raises(AuthSetupError, match="--private-key"):
        mint_for_config(rs, "call-7")
    private = tmp_path / "private.pem"
    private.write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    assert TokenVerifier(rs).verify("call-7", mint_for_config(rs, "call-7", private_key_file=private))
    with pytest.raises(AuthSetupError, match="not an RSA private key|cannot load"):
        mint_for_config(rs, "call-7", private_key_file=pem)


# ------------------------------------------------------------------------------------------ RS256
def _write_public_pem(tmp_path: Path, key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "public.pem"
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))
    return path


def _rs(key: rsa.RSAPrivateKey, sub: str, kid: str | None = None) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, key, algorithm="RS256",
                      headers={"kid": kid} if kid else None)


def test_rs256_pem_refuses_hs256_tokens_signed_with_the_public_key(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    """The classic algorithm confusion: an HS256 token whose 'secret' is the public PEM must not pass."""
    pem = _write_public_pem(tmp_path, rsa_key)
    verifier = TokenVerifier(AuthConfig(mode="jwt-rs256", public_key_file=str(pem)))
    assert verifier.verify("c", _rs(rsa_key, "c"))["sub"] == "c"
    # PyJWT itself refuses to HMAC-sign with a PEM key, so the forgery is built by hand.
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(
        json.dumps({"sub": "c", "exp": int(time.time()) + 60}).encode()
    )
    forged = signing_input + b"." + b64(hmac.new(pem.read_bytes(), signing_input, hashlib.sha256).digest())
    assert _reason(verifier, "c", forged.decode()) == "bad_algorithm"


def test_jwks_picks_keys_by_kid_and_reloads_on_change(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "jwks.json"

    def publish(keys: dict[str, rsa.RSAPrivateKey]) -> None:
        entries = [{**RSAAlgorithm.to_jwk(k.public_key(), as_dict=True), "kid": kid} for kid, k in keys.items()]
        tmp = tmp_path / "jwks.tmp"
        tmp.write_text(json.dumps({"keys": entries}))
        tmp.replace(jwks)

    publish({"k1": rsa_key})
    verifier = TokenVerifier(AuthConfig(mode="jwt-rs256", jwks_file=str(jwks)))
    assert verifier.verify("c", _rs(rsa_key, "c", "k1"))
    assert verifier.verify("c", _rs(rsa_key, "c"))  # no kid: every key in the file is tried
    assert _reason(verifier, "c", _rs(second, "c", "k2")) == "unknown_key"
    assert _reason(verifier, "c", _rs(second, "c", "k1")) == "bad_signature"
    assert _reason(verifier, "c", _rs(second, "c")) == "bad_signature"
    publish({"k1": rsa_key, "k2": second})
    assert verifier.verify("c", _rs(second, "c", "k2"))
    publish({"k2": second})
    assert _reason(verifier, "c", _rs(rsa_key, "c", "k1")) == "unknown_key"
    jwks.write_text("not json")  # a broken rewrite keeps the last good keys
    assert verifier.verify("c", _rs(second, "c", "k2"))


def test_bad_key_files_stop_the_start(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    missing = AuthConfig(mode="jwt-rs256", jwks_file=str(tmp_path / "nowhere.json"))
    with pytest.raises(AuthSetupError, match="nowhere.json"):
        TokenVerifier(missing)
    private_jwk = tmp_path / "private.json"
    private_jwk.write_text(json.dumps({"keys": [{**RSAAlgorithm.to_jwk(rsa_key, as_dict=True), "kid": "p"}]}))
    with pytest.raises(AuthSetupError, match="private key"):
        TokenVerifier(AuthConfig(mode="jwt-rs256", jwks_file=str(private_jwk)))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(AuthSetupError, match="not a PEM public key"):
        TokenVerifier(AuthConfig(mode="jwt-rs256", public_key_file=str(not_pem)))
    empty = tmp_path / "empty.json"
    empty.write_text('{"keys": []}')
    with pytest.raises(AuthSetupError, match="no RSA signing key"):
        TokenVerifier(AuthConfig(mode="jwt-rs256", jwks_file=str(empty)))


# ----------------------------------------------------------------------------------------- config
def test_auth_off_needs_an_explicit_allow() -> None:
    with pytest.raises(ConfigError, match="allow_unauthenticated"):
        load_config(CONFIGS / "app.yaml", ["server.auth.allow_unauthenticated=false"])
    assert load_config(CONFIGS / "app.yaml").server.auth.mode == "off"  # the loopback demo, allowed explicitly
    assert load_config(CONFIGS / "app.yaml", ["server.auth.mode=off"]).server.auth.mode == "off"  # bare YAML off
    production = load_config(CONFIGS / "production.yaml").server.auth
    assert (production.mode, production.allow_unauthenticated) == ("jwt-hs256", False)
    assert ServerConfig().auth.mode == "jwt-hs256"  # a config without the section is secure by default
    with pytest.raises(ConfigError, match="exactly one of"):
        load_config(CONFIGS / "app.yaml", ["server.auth.mode=jwt-rs256"])


def test_deprecated_auth_secret_env_means_hs256() -> None:
    auth = load_config(CONFIGS / "app.yaml", ["server.auth_secret_env=MY_SECRET"]).server.auth
    assert (auth.mode, auth.secret_env) == ("jwt-hs256", "MY_SECRET")
    with pytest.raises(ConfigError, match="auth_secret_env"):
        load_config(CONFIGS / "app.yaml", ["server.auth_secret_env=X", "server.auth.mode=jwt-rs256",
                                           "server.auth.jwks_file=j.json"])


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["server.auth.allow_unauthenticated=false"], "allow_unauthenticated"),
        (["server.auth.mode=jwt-hs256", "server.auth.secret_env=IASOVOICE_UNSET_TEST_SECRET"],
         "$IASOVOICE_UNSET_TEST_SECRET"),
    ],
    ids=["auth-off-not-allowed", "secret-not-set"],
)
def test_serve_refuses_to_start_before_ray(overrides: list[str], named: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IASOVOICE_UNSET_TEST_SECRET"}
    out = subprocess.run(
        [sys.executable, "-m", "iasovoice.cli",
         *[arg for override in [*STANDIN_ECHO, *overrides] for arg in ("--set", override)], "serve"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert named in out.stderr and "Ray" not in out.stderr


def test_open_gateway_warns_loudly_at_start_and_readyz_follows_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    from gateway.server import Gateway

    config = load_config(CONFIGS / "app.yaml")  # mode off, allow_unauthenticated true

    async def run() -> tuple[int, int]:
        gateway = Gateway(config, directory=None, storage=None, metrics=None)  # type: ignore[arg-type]
        with caplog.at_level(logging.WARNING, logger="gateway.server"):
            await gateway.start("127.0.0.1", 0)
        url = f"http://127.0.0.1:{gateway.port}/readyz"
        serving = await asyncio.to_thread(_status, url)
        gateway.mark_draining()
        draining = await asyncio.to_thread(_status, url)
        await gateway.stop()
        return serving, draining

    assert asyncio.run(run()) == (200, 503)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in warnings)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_failing_token_check_refuses_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: an unexpected error while checking is a 1008 refusal, never a 500 or an open call."""
    from gateway.server import Gateway
    from tests.gateway_calls import refused

    config = load_config(CONFIGS / "app.yaml", ["server.auth.mode=jwt-hs256", "server.auth.secret_env=CALL_SECRET"])
    monkeypatch.setenv("CALL_SECRET", SECRET)

    def broken(self: TokenVerifier, call_id: str, token: str | None) -> dict:
        raise RuntimeError("bug")

    monkeypatch.setattr(TokenVerifier, "verify", broken)

    async def run() -> tuple[int, str]:
        gateway = Gateway(config, directory=None, storage=None, metrics=None)  # type: ignore[arg-type]
        await gateway.start("127.0.0.1", 0)
        try:
            return await refused(f"ws://127.0.0.1:{gateway.port}/connect/c?token={call_token(SECRET.encode(), 'c')}")
        finally:
            await gateway.stop()

    assert asyncio.run(run()) == (1008, "invalid token")
