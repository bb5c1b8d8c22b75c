"""RS256 call tokens against a real `iasovoice serve` (stand-in engines): the gateway holds public keys only.

The key pairs are generated here with `cryptography`; the server is started once per key-file variant
(a PEM public key, and a JWKS file whose keys are chosen by `kid` and re-read when the file changes).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.gateway_calls import echo_call, refused
from tests.server import SECRET, STANDIN_ECHO, RunningServer, start_server, stop_server

pytestmark = pytest.mark.e2e


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig", "alg": "RS256"}


def _write_jwks(path: Path, keys: dict[str, rsa.RSAPrivateKey]) -> None:
    # Write then rename, as an operator's deploy tool should: the server never reads half a file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [_jwk(key, kid) for kid, key in keys.items()]}))
    tmp.replace(path)


def _sign(key: rsa.RSAPrivateKey, call_id: str, kid: str | None = None, **claims: object) -> str:
    now = int(time.time())
    body = {"sub": call_id, "iat": now, "exp": now + 300, "aud": "iasovoice-test", "iss": "test-bridge", **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid} if kid else None)


@dataclass
class Rs256Server:
    server: RunningServer
    variant: str
    key: rsa.RSAPrivateKey
    private_pem: Path
    key_file: Path

    @property
    def kid(self) -> str | None:
        return "key-1" if self.variant == "jwks" else None


@pytest.fixture(scope="module", params=["pem", "jwks"])
def rs256(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rs256Server]:
    root = tmp_path_factory.mktemp(f"rs256-{request.param}")
    key = _new_key()
    private_pem = root / "signer.pem"
    private_pem.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    if request.param == "pem":
        key_file = root / "public.pem"
        key_file.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))
        setting = f"server.auth.public_key_file={key_file}"
    else:
        key_file = root / "jwks.json"
        _write_jwks(key_file, {"key-1": key})
        setting = f"server.auth.jwks_file={key_file}"
    extra = [*STANDIN_ECHO, "server.auth.mode=jwt-rs256", setting,
             "server.auth.audience=iasovoice-test", "server.auth.issuer=test-bridge"]
    running = start_server(root, extra)
    yield Rs256Server(running, request.param, key, private_pem, key_file)
    assert stop_server(running) == 0, running.log_tail()


def test_signed_token_opens_the_call_by_query_and_by_header(rs256: Rs256Server) -> None:
    url = rs256.server.url
    asyncio.run(echo_call(f"{url}/connect/rs-query?token={_sign(rs256.key, 'rs-query', rs256.kid)}"))
    header = {"Authorization": f"Bearer {_sign(rs256.key, 'rs-header', rs256.kid)}"}
    asyncio.run(echo_call(f"{url}/connect/rs-header", header))


def test_refusals(rs256: Rs256Server) -> None:
    url = f"{rs256.server.url}/connect/rs-victim"
    forged = _sign(_new_key(), "rs-victim", rs256.kid)
    assert asyncio.run(refused(f"{url}?token={forged}")) == (1008, "bad signature")
    expired = _sign(rs256.key, "rs-victim", rs256.kid, exp=int(time.time()) - 300)
    assert asyncio.run(refused(f"{url}?token={expired}")) == (1008, "token expired")
    other = _sign(rs256.key, "rs-other", rs256.kid)
    assert asyncio.run(refused(f"{url}?token={other}")) == (1008, "token for another call")
    wrong_aud = _sign(rs256.key, "rs-victim", rs256.kid, aud="someone-else")
    assert asyncio.run(refused(f"{url}?token={wrong_aud}")) == (1008, "token for another audience")
    # An HS256 token (even one signed with the shared test secret) never passes an RS256 gateway.
    hs = jwt.encode({"sub": "rs-victim", "exp": int(time.time()) + 300}, SECRET.encode(), algorithm="HS256")
    assert asyncio.run(refused(f"{url}?token={hs}")) == (1008, "token algorithm not accepted")


def test_token_command_signs_with_the_private_key(rs256: Rs256Server) -> None:
    base = [sys.executable, "-m", "iasovoice.cli", "--set", "server.auth.mode=jwt-rs256",
            "--set", f"server.auth.{'jwks_file' if rs256.variant == 'jwks' else 'public_key_file'}={rs256.key_file}",
            "--set", "server.auth.audience=iasovoice-test", "--set", "server.auth.issuer=test-bridge",
            "token", "rs-cli"]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ))
    assert refused.returncode == 2 and "--private-key" in refused.stderr
    kid = ["--kid", rs256.kid] if rs256.kid else []
    out = subprocess.run([*base, "--private-key", str(rs256.private_pem), *kid],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    asyncio.run(echo_call(f"{rs256.server.url}/connect/rs-cli?token={out.stdout.strip()}"))


def test_key_files_rotate_without_a_restart(rs256: Rs256Server) -> None:
    url = rs256.server.url
    new_key = _new_key()
    if rs256.variant == "pem":  # one key: replacing the file swaps it for every token at once
        tmp = rs256.key_file.with_suffix(".tmp")
        tmp.write_bytes(new_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))
        tmp.replace(rs256.key_file)
        asyncio.run(echo_call(f"{url}/connect/pem-rot-1?token={_sign(new_key, 'pem-rot-1')}"))
        assert asyncio.run(refused(f"{url}/connect/pem-rot-2?token={_sign(rs256.key, 'pem-rot-2')}")) == (
            1008, "bad signature",
        )
        rs256.key = new_key
        return
    assert asyncio.run(refused(f"{url}/connect/rot-1?token={_sign(new_key, 'rot-1', 'key-2')}")) == (
        1008, "token signed by an unknown key",
    )
    _write_jwks(rs256.key_file, {"key-1": rs256.key, "key-2": new_key})  # publish the new key beside the old
    asyncio.run(echo_call(f"{url}/connect/rot-2?token={_sign(new_key, 'rot-2', 'key-2')}"))
    asyncio.run(echo_call(f"{url}/connect/rot-3?token={_sign(rs256.key, 'rot-3', 'key-1')}"))
    _write_jwks(rs256.key_file, {"key-2": new_key})  # retire the old one
    assert asyncio.run(refused(f"{url}/connect/rot-4?token={_sign(rs256.key, 'rot-4', 'key-1')}")) == (
        1008, "token signed by an unknown key",
    )
    rs256.key_file.write_text("{ half a file")  # a botched deploy keeps the last good keys
    asyncio.run(echo_call(f"{url}/connect/rot-5?token={_sign(new_key, 'rot-5', 'key-2')}"))
