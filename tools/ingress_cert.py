"""scripts/ingress-cert: a self-signed certificate for the Ingress's host, for HTTPS on a local cluster.

Writes tls.crt and tls.key (the key readable by you alone) where manifests/components/ingress-tls reads
them. A certificate already there is kept unless --force: a browser or curl that trusts it keeps working.
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[1]
HOST = "mp3converter.test"
FOLDER = ROOT / "manifests/components/ingress-tls"
VALID_DAYS = 365


def certificate(host: str, days: int) -> tuple[bytes, bytes]:
    """(certificate, key) in PEM: a P-256 key, the host as subject and only name, usable for TLS servers."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FOLDER, help=f"folder (default: {FOLDER.relative_to(ROOT)})")
    parser.add_argument("--days", type=int, default=VALID_DAYS, help=f"validity (default: {VALID_DAYS})")
    parser.add_argument("--force", action="store_true", help="replace a certificate that is already there")
    args = parser.parse_args(argv)
    cert_path, key_path = args.out / "tls.crt", args.out / "tls.key"
    if cert_path.exists() and key_path.exists() and not args.force:
        print(f"{cert_path} exists; kept (--force makes a new one).")
        return 0
    cert, key = certificate(HOST, args.days)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key)
    cert_path.write_bytes(cert)
    print(f"Wrote {cert_path} and {key_path} for https://{HOST}/ (valid {args.days} days).\n"
          "Enable manifests/components/ingress-tls in kustomization.yaml, then: kubectl apply -k .\n"
          f"curl --cacert {cert_path} https://{HOST}/healthz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
