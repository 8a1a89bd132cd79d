"""TLS fixtures: a throwaway CA and a server certificate for 127.0.0.1/localhost, and an emulator serving https/wss.

Everything is generated per test in tmp_path with `cryptography`; nothing touches the system trust store.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from osipi_dagster_tests.emulator import Emulator

FROZEN = datetime(2024, 5, 1, 12, tzinfo=UTC)
SEED = 42
TAGS = 60
POLL_MS = 40


@dataclass(frozen=True)
class Pki:
    """PEM files: the CA certificate (the bundle a client trusts), the server certificate and its key."""

    ca: Path
    cert: Path
    key: Path


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate (SAN DNS:localhost, IP:127.0.0.1) signed by it, valid for a day.

    Key identifiers and critical basic constraints are included because OpenSSL 3 (and Python 3.13's strict
    verification) reject CA certificates without them.
    """
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "osipi-dagster throwaway test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "server-key.pem")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def tls_emulator(pki: Pki, emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A private emulator on https:// and wss:// (frozen clock, admin on, fast channel polls)."""
    emu = emulator_factory(
        "--seed", str(SEED),
        "--tags", str(TAGS),
        "--clock", f"frozen:{FROZEN:%Y-%m-%dT%H:%M:%SZ}",
        "--admin",
        "--channel-poll-ms", str(POLL_MS),
        "--tls-cert", str(pki.cert),
        "--tls-key", str(pki.key),
    )  # fmt: skip
    assert emu.root.startswith("https://")
    return emu
