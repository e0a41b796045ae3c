"""Certificates and keys for the local cluster, made with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CA_DAYS = 3650
LEAF_DAYS = 825


class PKIError(RuntimeError):
    pass


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if not exe:
        raise PKIError("the openssl command is needed to create the cluster's certificates")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PKIError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}")


def _ec_key(path: Path, cwd: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path), cwd=cwd)
    path.chmod(0o600)


class PKI:
    """A self-made CA under ``directory`` and the leaf certificates signed by it."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.sa_key = self.dir / "sa.key"
        self.sa_pub = self.dir / "sa.pub"

    def ensure_ca(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.ca_cert.exists() and self.ca_key.exists():
            return
        _ec_key(self.ca_key, self.dir)
        _openssl("req", "-x509", "-new", "-key", str(self.ca_key), "-sha256",
                 "-days", str(CA_DAYS), "-subj", "/CN=localcluster-ca",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                 "-out", str(self.ca_cert), cwd=self.dir)

    def ensure_service_account_keys(self) -> None:
        """Key pair the API server signs service-account tokens with (ES256)."""
        if self.sa_key.exists() and self.sa_pub.exists():
            return
        _ec_key(self.sa_key, self.dir)
        _openssl("pkey", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub),
                 cwd=self.dir)

    def leaf(self, name: str, common_name: str, *, organizations: tuple[str, ...] = (),
             server: bool = False, client: bool = False,
             dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """Issue (once) a certificate/key pair ``name.crt``/``name.key``."""
        crt, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        if crt.exists() and key.exists():
            return crt, key
        _ec_key(key, self.dir)
        subject = "".join(f"/O={o}" for o in organizations) + f"/CN={common_name}"
        csr = self.dir / f"{name}.csr"
        _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr),
                 cwd=self.dir)
        usages = []
        if server:
            usages.append("serverAuth")
        if client:
            usages.append("clientAuth")
        ext_lines = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=" + ",".join(usages or ["clientAuth"]),
            "subjectKeyIdentifier=hash",
            "authorityKeyIdentifier=keyid",
        ]
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        if sans:
            ext_lines.append("subjectAltName=" + ",".join(sans))
        ext = self.dir / f"{name}.ext"
        ext.write_text("\n".join(ext_lines) + "\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert),
                 "-CAkey", str(self.ca_key), "-CAcreateserial", "-sha256",
                 "-days", str(LEAF_DAYS), "-extfile", str(ext), "-out", str(crt),
                 cwd=self.dir)
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
        return crt, key
