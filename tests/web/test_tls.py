"""KITT's own certificate authority and server certificate: made once, keys private,
SANs covering every name the server answers to, re-issued by the same CA when needed."""

from __future__ import annotations

import ssl
import stat

import pytest
from cryptography import x509

import kitt
from kitt_web.tls import ensure_local_tls, fingerprint, host_names, server_context, spki_sha256


def sans(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
            | set(ext.get_values_for_type(x509.DNSName)))


def test_a_ca_and_a_server_certificate_are_made_once_with_private_keys(tmp_path):
    files = ensure_local_tls(["kitt.example.com", "10.1.2.3"], folder=tmp_path)
    for key in ("ca-key.pem", "server-key.pem"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    names = sans(files.cert)
    assert {"localhost", "127.0.0.1", "::1", "kitt.example.com", "10.1.2.3"} <= names
    assert set(host_names()) <= names
    # The CA signs the server certificate (a live handshake: tests/web/test_server.py).
    assert server_context(files).minimum_version == ssl.TLSVersion.TLSv1_2
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    # A second start reuses both.
    again = ensure_local_tls(["kitt.example.com"], folder=tmp_path)
    assert again.cert.read_bytes() == files.cert.read_bytes()
    assert fingerprint(again.ca) == fingerprint(files.ca)


def test_a_new_name_reissues_the_server_certificate_from_the_same_ca(tmp_path):
    first = ensure_local_tls([], folder=tmp_path)
    ca_before, key_pin = fingerprint(first.ca), spki_sha256(first.ca)
    cert_before, agents_pin = first.cert.read_bytes(), spki_sha256(first.cert)
    second = ensure_local_tls(["gpu-box.lan"], folder=tmp_path)
    assert second.cert.read_bytes() != cert_before
    assert "gpu-box.lan" in sans(second.cert)
    assert fingerprint(second.ca) == ca_before and spki_sha256(second.ca) == key_pin
    # The server's key stays: agents (and curl --pinnedpubkey) pin it.
    assert spki_sha256(second.cert) == agents_pin


@pytest.mark.parametrize("name", ["bad name", "a..b", "x" * 64 + ".com", "-;rm -rf /", ""])
def test_a_bad_extra_name_is_refused(tmp_path, name):
    with pytest.raises(kitt.BadInput, match="tls-san"):
        ensure_local_tls([name], folder=tmp_path)


def test_a_key_that_does_not_match_is_bad_input(tmp_path):
    one = ensure_local_tls([], folder=tmp_path / "one")
    two = ensure_local_tls([], folder=tmp_path / "two")
    from kitt_web.tls import TlsFiles

    with pytest.raises(kitt.BadInput, match="matching"):
        server_context(TlsFiles(one.cert, two.key))
    with pytest.raises(kitt.BadInput, match="does not exist"):
        server_context(TlsFiles(tmp_path / "nope.pem", one.key))
