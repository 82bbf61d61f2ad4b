"""A throwaway public-key infrastructure for TLS tests, made at test time with ``cryptography``.

:func:`make_pki` writes PEM files into a directory: a certificate authority, a server
certificate for ``localhost`` / ``127.0.0.1`` (usable as a client certificate too, as the
Cogment Orchestrator uses one identity both ways), a client certificate, and a second,
unrelated authority with a client and a server certificate of its own (what a peer outside the
deployment holds). EC P-256 keys: fast to make, accepted by gRPC's TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cogment_gym.protocol.security import Security

__all__ = ["Pki", "make_pki"]


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files, and the settings each party of a test deployment uses."""

    directory: Path
    ca: Path
    server_key: Path
    server_cert: Path
    client_key: Path
    client_cert: Path
    other_ca: Path
    other_client_key: Path
    other_client_cert: Path
    other_server_key: Path
    other_server_cert: Path

    def server(self, *, mtls: bool = True, token: str | None = None) -> Security:
        """A server of the deployment (TLS; client certificates required when ``mtls``); it
        dials with the same identity, as the Cogment Orchestrator does."""
        return Security(private_key=self.server_key, cert_chain=self.server_cert, root_cert=self.ca,
                        require_client_cert=mtls, token=token)

    def client(self, *, cert: bool = True, token: str | None = None) -> Security:
        """A client of the deployment: trusts its CA, presents its client certificate when ``cert``."""
        if not cert:
            return Security(root_cert=self.ca, token=token)
        return Security(root_cert=self.ca, private_key=self.client_key, cert_chain=self.client_cert, token=token)

    def outsider(self) -> Security:
        """A client trusting the deployment's CA but holding a certificate of another CA."""
        return Security(root_cert=self.ca, private_key=self.other_client_key, cert_chain=self.other_client_cert)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)


def _ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, name: str, *, server: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(directory: Path) -> Pki:
    """Make the authorities, keys and certificates in ``directory`` (which must exist)."""
    pki = Pki(
        directory=directory,
        ca=directory / "ca.pem",
        server_key=directory / "server.key",
        server_cert=directory / "server.pem",
        client_key=directory / "client.key",
        client_cert=directory / "client.pem",
        other_ca=directory / "other-ca.pem",
        other_client_key=directory / "other-client.key",
        other_client_cert=directory / "other-client.pem",
        other_server_key=directory / "other-server.key",
        other_server_cert=directory / "other-server.pem",
    )
    for ca_name, ca_path, leaves in (
        ("cogment-gym test CA", pki.ca, [(pki.server_key, pki.server_cert, "localhost", True),
                                         (pki.client_key, pki.client_cert, "test client", False)]),
        ("another CA", pki.other_ca, [(pki.other_client_key, pki.other_client_cert, "outsider", False),
                                      (pki.other_server_key, pki.other_server_cert, "localhost", True)]),
    ):
        ca_key, ca_cert = _ca(ca_name)
        _write_cert(ca_path, ca_cert)
        for key_path, cert_path, name, server in leaves:
            key, cert = _leaf(ca_key, ca_cert, name, server=server)
            _write_key(key_path, key)
            _write_cert(cert_path, cert)
    return pki
