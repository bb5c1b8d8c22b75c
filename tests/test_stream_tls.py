"""The gateway → call actor stream over mutual TLS: real certificates, real sockets, the real codec.

A throwaway CA and certificates are made with `cryptography` in tmp_path; the actor side is a plain
object with the call actor's `exchange`/`stream_lost` (as in tests/test_links.py), so no Ray is needed.
Each refusal is checked from both ends: the gateway gets a LinkError and the actor never sees an
exchange (nor a "lost gateway", which would hang a real call up).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ray.actor import ActorHandle

from actors import stream_codec as codec
from actors.outbound import Binding, OutboundItem
from actors.stream_server import StreamServer
from gateway.links import LinkError, StreamLink, open_link
from iasovoice.config import StreamTLSConfig, load_config
from iasovoice.errors import ConfigError
from iasovoice.stream_tls import client_context, server_context
from tests.stream_echo import EchoActor

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SERVER_NAME = "iasovoice-call-actor"
PCM = bytes(range(256)) * 5  # 1280 bytes: four 20 ms frames at 8 kHz, 16-bit


# ------------------------------------------------------------------------------ throwaway PKI
@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return builder.not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))


def make_ca(directory: Path, name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(name)).issuer_name(_name(name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Authority(key, cert, path)


def make_node(directory: Path, ca: Authority, stem: str, dns_name: str = SERVER_NAME) -> tuple[Path, Path]:
    """A node certificate as docs/security.md describes it: SAN = the server name, server+client auth."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(stem)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def tls_config(cert: Path, key: Path, ca: Path, server_name: str = SERVER_NAME) -> StreamTLSConfig:
    return StreamTLSConfig(
        mode="tls", cert_file=str(cert), key_file=str(key), ca_file=str(ca), server_name=server_name
    )


@dataclass(frozen=True)
class Pki:
    """The cluster's CA and node certificate, plus a second, unrelated CA with its own node certificate."""

    ca: Authority
    node: StreamTLSConfig
    other_ca: Authority
    other_cert: Path
    other_key: Path


@pytest.fixture()
def pki(tmp_path: Path) -> Pki:
    ca = make_ca(tmp_path, "stream-ca")
    other = make_ca(tmp_path, "other-ca")
    cert, key = make_node(tmp_path, ca, "node")
    other_cert, other_key = make_node(tmp_path, other, "intruder")
    return Pki(ca, tls_config(cert, key, ca.path), other, other_cert, other_key)


# ------------------------------------------------------------------------------ the actor side


async def _serve(tls: StreamTLSConfig) -> tuple[EchoActor, StreamServer]:
    actor = EchoActor()
    server = StreamServer(actor, "127.0.0.1", tls)
    await server.start()
    return actor, server


async def _assert_refused(link: StreamLink, actor: EchoActor) -> None:
    with pytest.raises(LinkError):
        await asyncio.wait_for(link.exchange(0, PCM), 5)
    await asyncio.sleep(0.05)
    assert actor.exchanges == []
    assert not actor.lost.is_set()  # a refused stranger is not the call's gateway going away


async def _assert_still_serves(server: StreamServer, tls: StreamTLSConfig, actor: EchoActor) -> None:
    link = await StreamLink.connect(server.address, server.token, tls=tls)
    assert (await link.exchange(7, PCM[:640])).next_seq == 9
    await link.close()
    assert actor.exchanges == [(7, PCM[:640])]


# ------------------------------------------------------------------------------ the stream
async def test_exchanges_over_mutual_tls(pki: Pki) -> None:
    actor, server = await _serve(pki.node)
    link = await StreamLink.connect(server.address, server.token, tls=pki.node)
    tls_object = link._writer.get_extra_info("ssl_object")
    assert isinstance(tls_object, ssl.SSLObject) and tls_object.version() in {"TLSv1.2", "TLSv1.3"}
    result = await link.exchange(3, PCM[:640])
    assert result.next_seq == 5 and result.items[0] == OutboundItem("audio", PCM[:640])
    assert result.items[1].data["text"] == "héllo"
    assert [item.kind for item in (await link.exchange(5, b"")).items] == ["transcript"]
    await link.close()
    await asyncio.sleep(0.05)
    assert actor.exchanges == [(3, PCM[:640]), (5, b"")]
    assert not actor.lost.is_set()  # the bye travels over TLS too
    await server.close()


async def test_open_link_uses_the_configured_tls(pki: Pki) -> None:
    """The gateway's own entry point (`_handle` calls it with `server.stream_tls`), not just StreamLink."""
    actor, server = await _serve(pki.node)
    binding = Binding(0, server.address, server.token)
    plain = await open_link(cast(ActorHandle, None), binding, StreamTLSConfig())  # mode off against a TLS actor
    await _assert_refused(cast(StreamLink, plain), actor)
    link = await open_link(cast(ActorHandle, None), binding, pki.node)  # a stream binding never calls the actor
    assert isinstance(link, StreamLink) and link._writer.get_extra_info("ssl_object") is not None
    assert (await link.exchange(0, b"")).next_seq == 0
    await link.close()
    await server.close()


async def test_gateway_without_a_certificate_is_refused(pki: Pki) -> None:
    actor, server = await _serve(pki.node)
    no_cert = ssl.create_default_context(cafile=str(pki.ca.path))  # trusts the actor, presents nothing
    reader, writer = await asyncio.open_connection(*server.address, ssl=no_cert, server_hostname=SERVER_NAME)
    writer.write(codec.frame(codec.HELLO + server.token))  # even with the right token
    await _assert_refused(StreamLink(reader, writer), actor)
    await _assert_still_serves(server, pki.node, actor)
    await server.close()


async def test_gateway_with_a_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    actor, server = await _serve(pki.node)
    intruder = tls_config(pki.other_cert, pki.other_key, pki.ca.path)  # trusts the actor; its own cert is foreign
    link = await StreamLink.connect(server.address, server.token, tls=intruder)
    await _assert_refused(link, actor)
    await _assert_still_serves(server, pki.node, actor)
    await server.close()


async def test_plain_tcp_client_is_refused(pki: Pki) -> None:
    actor, server = await _serve(pki.node)
    link = await StreamLink.connect(server.address, server.token)  # no tls: clear text to a TLS listener
    await _assert_refused(link, actor)
    await _assert_still_serves(server, pki.node, actor)
    await server.close()


async def test_wrong_hello_token_over_good_tls_is_refused(pki: Pki) -> None:
    actor, server = await _serve(pki.node)
    link = await StreamLink.connect(server.address, b"not-the-token-00", tls=pki.node)
    await _assert_refused(link, actor)
    await _assert_still_serves(server, pki.node, actor)
    await server.close()


async def test_gateway_refuses_an_actor_certificate_from_another_ca(pki: Pki) -> None:
    impostor = tls_config(pki.other_cert, pki.other_key, pki.ca.path)  # listens with the foreign cert
    actor, server = await _serve(impostor)
    with pytest.raises(LinkError, match="SSLCertVerificationError"):
        await StreamLink.connect(server.address, server.token, tls=pki.node)
    assert actor.exchanges == [] and not actor.lost.is_set()
    await server.close()


async def test_gateway_refuses_an_actor_certificate_for_another_name(pki: Pki, tmp_path: Path) -> None:
    cert, key = make_node(tmp_path, pki.ca, "elsewhere", dns_name="billing.internal")  # right CA, wrong name
    actor, server = await _serve(tls_config(cert, key, pki.ca.path))
    with pytest.raises(LinkError, match="SSLCertVerificationError"):
        await StreamLink.connect(server.address, server.token, tls=pki.node)
    assert actor.exchanges == []
    await server.close()


def test_contexts_are_mutual_and_tls12_or_later(pki: Pki) -> None:
    server = server_context(pki.node, "10.1.2.3")  # with TLS, any address may listen
    client = client_context(pki.node)
    assert server is not None and client is not None
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server.verify_mode == client.verify_mode == ssl.CERT_REQUIRED
    assert client.check_hostname
    assert client_context(pki.node) is client  # one context for all of a gateway's calls


# ------------------------------------------------------------------------------ clear text: where allowed
def test_clear_text_only_on_loopback_or_a_stated_private_network() -> None:
    off = StreamTLSConfig()
    private = StreamTLSConfig(private_network=True)
    assert server_context(off, "127.0.0.1") is None and server_context(off, "::1") is None
    assert server_context(private, "10.0.3.7") is None
    with pytest.raises(ConfigError, match="server.stream_tls.mode: tls"):
        server_context(off, "10.0.3.7")
    with pytest.raises(ConfigError, match="server.stream_tls.private_network is true, but .* 8.8.8.8"):
        server_context(private, "8.8.8.8")
    with pytest.raises(ConfigError, match="server.stream_tls.mode: tls"):
        StreamServer(EchoActor(), "10.0.3.7", off)  # refused before anything listens
    assert client_context(off) is None


# ------------------------------------------------------------------------------ configuration
def test_cluster_without_tls_or_private_network_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / "app.yaml", ["ray.address=auto"])
    message = str(error.value)
    assert "call audio stream would cross the network in clear text" in message
    assert "server.stream_tls.mode: tls" in message and "server.stream_tls.private_network: true" in message
    private = load_config(CONFIGS / "app.yaml", ["ray.address=auto", "server.stream_tls.private_network=true"])
    assert private.server.stream_tls.mode == "off"
    assert load_config(CONFIGS / "app.yaml", ["ray.address=auto", "server.transport=ray"]).server.transport == "ray"
    assert load_config(CONFIGS / "app.yaml").server.stream_tls.mode == "off"  # local Ray: loopback, nothing needed
    assert load_config(CONFIGS / "app.yaml", ["server.stream_tls.mode=off"]).server.stream_tls.mode == "off"


def test_production_turns_tls_on() -> None:
    tls = load_config(CONFIGS / "production.yaml").server.stream_tls
    assert tls.mode == "tls" and tls.cert_file and tls.key_file and tls.ca_file
    assert tls.server_name == SERVER_NAME


def test_tls_mode_needs_its_files_named() -> None:
    with pytest.raises(ConfigError) as error:
        load_config(CONFIGS / "app.yaml", ["server.stream_tls.mode=tls", "server.stream_tls.cert_file=/x.crt"])
    assert "server.stream_tls.key_file" in str(error.value) and "server.stream_tls.ca_file" in str(error.value)


def test_missing_or_bad_files_name_their_key(pki: Pki, tmp_path: Path) -> None:
    node = pki.node
    missing = node.model_copy(update={"cert_file": str(tmp_path / "no-such.crt")})
    with pytest.raises(ConfigError, match=r"server.stream_tls.cert_file: cannot read .*no-such.crt"):
        client_context(missing)
    with pytest.raises(ConfigError, match="server.stream_tls.key_file: cannot read"):
        server_context(node.model_copy(update={"key_file": str(tmp_path / "gone.key")}), "127.0.0.1")
    not_pem = tmp_path / "not-pem.crt"
    not_pem.write_text("hello\n")
    with pytest.raises(ConfigError, match="server.stream_tls.ca_file: .*no usable PEM CA"):
        client_context(node.model_copy(update={"ca_file": str(not_pem)}))
    with pytest.raises(ConfigError, match="server.stream_tls.cert_file / server.stream_tls.key_file"):
        client_context(node.model_copy(update={"key_file": str(pki.other_key)}))  # a key of another cert


def test_an_encrypted_key_is_an_error_not_a_prompt(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(Path(str(pki.node.key_file)).read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ))
    with pytest.raises(ConfigError, match="server.stream_tls.key_file is encrypted"):
        client_context(pki.node.model_copy(update={"key_file": str(encrypted)}))
