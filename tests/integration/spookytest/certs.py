"""Test PKI made with certtool (gnutls-bin): one CA and one server certificate for
DNS:localhost, IP:127.0.0.1 and IP:::1, ECDSA P-256 keys, valid from now for two days."""

import dataclasses
import pathlib
import subprocess

CERTTOOL = "certtool"


@dataclasses.dataclass(frozen=True)
class Certs:
    ca: pathlib.Path       # CA certificate (PEM): what clients and spooky trust
    ca_key: pathlib.Path   # CA private key (PEM)
    cert: pathlib.Path     # server certificate (PEM), signed by ca
    key: pathlib.Path      # server private key (PEM)


def _certtool(args, cwd):
    # --no-text: plain PEM without the human-readable preamble.
    proc = subprocess.run([CERTTOOL, "--no-text", *args], cwd=cwd, capture_output=True,
                          timeout=30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"certtool {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stderr.decode(errors='replace')}")


def _genkey(path, cwd):
    _certtool(["--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1",
               "--outfile", str(path)], cwd)


def make_ca(directory, name="ca", cn="spooky test CA"):
    """Makes a self-signed CA in `directory`; returns (cert_path, key_path)."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key, cert, tmpl = d / f"{name}.key", d / f"{name}.pem", d / f"{name}.tmpl"
    tmpl.write_text(f'cn = "{cn}"\nca\ncert_signing_key\ncrl_signing_key\n'
                    "expiration_days = 2\n")
    _genkey(key, d)
    _certtool(["--generate-self-signed", "--load-privkey", str(key), "--template", str(tmpl),
               "--outfile", str(cert)], d)
    return cert, key


def make_server_cert(directory, ca, ca_key, name="server", dns=("localhost",),
                     ips=("127.0.0.1", "::1")):
    """Makes a server certificate signed by (ca, ca_key); returns (cert_path, key_path)."""
    d = pathlib.Path(directory)
    key, cert, tmpl = d / f"{name}.key", d / f"{name}.pem", d / f"{name}.tmpl"
    lines = [f'cn = "{dns[0] if dns else ips[0]}"']
    lines += [f'dns_name = "{n}"' for n in dns]
    lines += [f'ip_address = "{ip}"' for ip in ips]
    lines += ["tls_www_server", "signing_key", "encryption_key", "expiration_days = 2"]
    tmpl.write_text("\n".join(lines) + "\n")
    _genkey(key, d)
    _certtool(["--generate-certificate", "--load-privkey", str(key),
               "--load-ca-certificate", str(ca), "--load-ca-privkey", str(ca_key),
               "--template", str(tmpl), "--outfile", str(cert)], d)
    return cert, key


def make_certs(directory):
    """The standard test PKI: CA + localhost server certificate."""
    ca, ca_key = make_ca(directory)
    cert, key = make_server_cert(directory, ca, ca_key)
    return Certs(ca=ca, ca_key=ca_key, cert=cert, key=key)


def make_client_cert(directory, ca, ca_key, name="client", cn="spooky test client"):
    """Makes a TLS client certificate (extended key usage tls_www_client) signed by
    (ca, ca_key), for mutual TLS towards backends; returns (cert_path, key_path)."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key, cert, tmpl = d / f"{name}.key", d / f"{name}.pem", d / f"{name}.tmpl"
    tmpl.write_text(f'cn = "{cn}"\ntls_www_client\nsigning_key\nexpiration_days = 2\n')
    _genkey(key, d)
    _certtool(["--generate-certificate", "--load-privkey", str(key),
               "--load-ca-certificate", str(ca), "--load-ca-privkey", str(ca_key),
               "--template", str(tmpl), "--outfile", str(cert)], d)
    return cert, key
