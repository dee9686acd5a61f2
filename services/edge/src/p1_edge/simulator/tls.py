"""A throwaway CA and a device certificate shaped like HomeWizard's (CN appliance/<type>/<serial>).

The simulator serves v2 over HTTPS with it; the edge trusts the CA through ``P1_CA_FILE``, so tests
exercise the same CA-plus-hostname rule as against a real meter.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    ca: Path
    cert: Path
    key: Path


def make_certificates(
    directory: Path, appliance_hostname: str, *, ip_address: str | None = None
) -> CertFiles:
    """A CA and a server certificate for ``appliance_hostname`` (its CN). ``ip_address`` adds a
    subjectAltName for that address — what a private CA's server certificate has (the tests' stand-in
    for Caddy's internal CA); HomeWizard's device certificates have none."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_name, ca_cert = _make_ca(now)
    key = ec.generate_private_key(ec.SECP256R1())
    # Like the real devices: the identity is in the CN only, no subjectAltName (unless asked for).
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, appliance_hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if ip_address is not None:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip_address))])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    files = CertFiles(directory / "ca.pem", directory / "device.pem", directory / "device.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def _make_ca(
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Name, x509.Certificate]:
    """The simulator's own "Appliance Access CA": a self-signed EC key allowed to sign certificates."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "p1-edge simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Simulated Appliance Access CA"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_name, ca_cert
