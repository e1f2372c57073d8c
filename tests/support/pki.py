"""Test certificates: a self-signed server certificate, a CA and a client certificate it signed
(EC P-256, valid a day for localhost and 127.0.0.1), as PEM text and files."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
) -> str:
    """Self-signed unless ``issuer`` (name, key) signs it; valid for localhost/127.0.0.1."""
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca or issuer is None, path_length=None), True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
    )
    return (
        builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    )


class Pki:
    def __init__(self, directory: Path) -> None:
        server_key, ca_key, client_key = _key(), _key(), _key()
        self.server_cert = _certificate("localhost", server_key)  # self-signed
        self.server_key = _pem_key(server_key)
        self.ca_cert = _certificate("tfsgate test CA", ca_key, ca=True)
        self.client_cert = _certificate("client", client_key, issuer=("tfsgate test CA", ca_key))
        self.client_key = _pem_key(client_key)
        self.files: dict[str, Path] = {}
        for name in ("server_cert", "server_key", "ca_cert", "client_cert", "client_key"):
            path = directory / f"{name}.pem"
            path.write_text(getattr(self, name))
            self.files[name] = path

    def ssl_config(self) -> str:
        def quoted(text: str) -> str:
            return '"' + text.replace("\n", "\\n") + '"'

        return (
            f"server_key: {quoted(self.server_key)}\n"
            f"server_cert: {quoted(self.server_cert)}\n"
            f"custom_ca: {quoted(self.ca_cert)}\n"
            "client_verify: true\n"
        )


def client_context(pki: Pki, client_cert: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.files["server_cert"]))
    if client_cert:
        context.load_cert_chain(pki.files["client_cert"], pki.files["client_key"])
    return context
