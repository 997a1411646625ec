"""HTTPS by default: a local certificate authority and a server certificate it signs,
made once under `KITT_HOME/web/tls/` (keys mode 0600) when no `--tls-cert/--tls-key` is
given.

The server certificate's SANs cover localhost, the loopback addresses, this host's names
and every `--tls-san`; it is re-issued (by the same CA) when a SAN is asked for that it
lacks or when it nears expiry, so clients that trust the CA keep trusting the server.
Clients verify against the CA file or pin the CA's SHA-256 fingerprint, which every start
prints; the agent pins the server key's (`spki_sha256`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

import attrs

import kitt

CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept for a server certificate
RENEW_BEFORE_DAYS = 30


@attrs.frozen
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None = None
    """The local CA's certificate, when KITT made the server's."""


def tls_dir() -> Path:
    return kitt.kitt_home() / "web" / "tls"


def host_names() -> list[str]:
    """localhost, the loopback addresses and this host's names."""
    names = ["localhost", "127.0.0.1", "::1"]
    for name in (socket.gethostname(), socket.getfqdn()):
        if name and name not in names:
            names.append(name)
    return names


def _san(name: str):
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def check_san(name: str) -> str:
    name = name.strip()
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253 or not all(
            label and len(label) <= 63 and label.replace("-", "").replace("*", "").isalnum()
            for label in labels):
        raise kitt.BadInput(f"bad --tls-san {name!r}",
                            hint="a DNS name (kitt.example.com) or an IP address")
    return name


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(path.with_suffix(".tmp"), path)


def _write_cert(path: Path, cert) -> None:
    from cryptography.hazmat.primitives import serialization

    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp, path)


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KITT"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ensure_ca(folder: Path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        return (x509.load_pem_x509_certificate(cert_path.read_bytes()),
                serialization.load_pem_private_key(key_path.read_bytes(), None))
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(f"KITT local CA ({socket.gethostname()})")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert, key


def _server_sans(cert) -> set[str]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
            | set(ext.get_values_for_type(x509.DNSName)))


def ensure_local_tls(extra_sans: Iterable[str] = (), folder: Path | None = None) -> TlsFiles:
    """The local CA and a server certificate covering every name; made or re-issued only
    when needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    folder = folder or tls_dir()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_cert, ca_key = _ensure_ca(folder)
    wanted = list(dict.fromkeys([*host_names(), *(check_san(n) for n in extra_sans)]))
    cert_path, key_path = folder / "server.pem", folder / "server-key.pem"
    now = dt.datetime.now(dt.timezone.utc)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        fresh = cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)
        signed_by_ca = cert.issuer == ca_cert.subject
        normalized = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in wanted}
        if fresh and signed_by_ca and normalized <= _server_sans(cert):
            return TlsFiles(cert_path, key_path, folder / "ca.pem")
    # A re-issue (a new name, renewal) keeps the server's key: agents and curl pin it.
    if key_path.exists():
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    else:
        key = _new_key()
    cert = (x509.CertificateBuilder().subject_name(_name(wanted[0]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in wanted]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return TlsFiles(cert_path, key_path, folder / "ca.pem")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate (DER), as `AB:CD:...` (what browsers show)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256(cert_path: Path) -> str:
    """SHA-256 of the certificate's public key (SubjectPublicKeyInfo, DER), base64: what
    `curl --pinnedpubkey sha256//...` and the agent pin."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2+ with the certificate chain (server, then the local CA when KITT made it)."""
    for path in (files.cert, files.key):
        if not path.is_file():
            raise kitt.BadInput(f"TLS file {path} does not exist",
                                hint="give existing --tls-cert and --tls-key PEM files")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    chain = files.cert
    if files.ca is not None:
        chain = files.cert.with_name("server-chain.pem")
        chain.write_bytes(files.cert.read_bytes() + files.ca.read_bytes())
    try:
        context.load_cert_chain(chain, files.key)
    except (ssl.SSLError, ValueError) as exc:
        raise kitt.BadInput(f"cannot use {files.cert} with {files.key}: {exc}",
                            hint="give a PEM certificate and its matching unencrypted key"
                            ) from None
    return context
