"""The newest run's anchor: an SSH signature of its manifest, or its sha256 for a change ticket.

The manifest lists every artifact's hash and links to the previous run's manifest, so a
changed older run shows; what protects the newest one is outside the run directory: a
signature made with a key the auditor trusts (``ssh-keygen -Y sign``, as git signs commits,
namespace ``tenancy-runbook``, kept beside it as ``manifest.json.sig``) checked against an
allowed_signers file, or the manifest's sha256 the operator pasted into the change ticket.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .errors import RunbookError

NAMESPACE = "tenancy-runbook"
SIGNATURE = ".sig"     # manifest.json.sig
TIMEOUT_S = 30


def signature_of(manifest: Path) -> Path:
    """Where ``manifest``'s signature is kept: beside it, ``manifest.json.sig``."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.name + SIGNATURE)


def _ssh_keygen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise RunbookError("ssh-keygen not found: install OpenSSH's client (Debian: openssh-client) "
                           "to sign or check manifests.")
    return subprocess.run([exe, *args], input=stdin, capture_output=True, timeout=TIMEOUT_S)


def _said(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or done.stdout or b"").decode(errors="replace").strip()
    return text.splitlines()[-1] if text else f"exit {done.returncode}"


def check_key(key: Path) -> str:
    """Before a run: ``key`` is a private SSH key ssh-keygen can sign with, without a passphrase
    prompt. Its fingerprint; a RunbookError (exit 2) naming what is wrong otherwise."""
    key = Path(key)
    if not key.is_file():
        raise RunbookError(f"--sign-key {key}: no such file. Give the path of a private SSH key "
                           "(e.g. ~/.ssh/id_ed25519). Nothing was done.")
    public = _ssh_keygen("-y", "-P", "", "-f", str(key))
    if public.returncode != 0:
        raise RunbookError(f"--sign-key {key}: not a private SSH key usable without a passphrase "
                           f"prompt ({_said(public)}). Use an unencrypted key kept for signing "
                           "runs. Nothing was done.")
    printed = _ssh_keygen("-l", "-f", "/dev/stdin", stdin=public.stdout)
    return printed.stdout.decode().split()[1] if printed.returncode == 0 else "unknown fingerprint"


def sign(manifest: Path, key: Path) -> Path:
    """``manifest``.sig, made with ``key`` in the tenancy-runbook namespace."""
    manifest = Path(manifest)
    signature = signature_of(manifest)
    signature.unlink(missing_ok=True)
    done = _ssh_keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(manifest))
    if done.returncode != 0 or not signature.is_file():
        raise RunbookError(f"signing {manifest} with {key} failed: {_said(done)}")
    return signature


def described(manifest: Path) -> str:
    """The signature beside ``manifest`` as the run's index shows it (without checking who may
    sign: that is verify --allowed-signers)."""
    manifest = Path(manifest)
    signature = signature_of(manifest)
    if not signature.is_file():
        return ("not signed: the anchor is the manifest's sha256, printed at the end of the run "
                "(tenancy-runbook verify RUN_DIR --expect-sha256 HEX)")
    done = _ssh_keygen("-Y", "check-novalidate", "-n", NAMESPACE, "-s", str(signature),
                       stdin=manifest.read_bytes())
    if done.returncode != 0:
        return f"{signature.name}: does not match manifest.json ({_said(done)})"
    key = done.stdout.decode().strip().split(" key ")[-1]
    return f"signed: {signature.name}, SSH signature (namespace {NAMESPACE}) by the {key} key"


def verify(manifest: Path, allowed_signers: Path) -> tuple[list[str], str | None]:
    """What is wrong with the signature of ``manifest`` against ``allowed_signers`` (ssh's
    allowed_signers format): missing, not matching the manifest, or by a key not allowed; and
    who signed it (the principal) when nothing is."""
    manifest, allowed_signers = Path(manifest), Path(allowed_signers)
    signature = signature_of(manifest)
    if not allowed_signers.is_file():
        raise RunbookError(f"--allowed-signers {allowed_signers}: no such file (one line per signer: "
                           "'PRINCIPAL KEYTYPE KEY', as for git's gpg.ssh.allowedSignersFile)")
    if not signature.is_file():
        return [f"signature: {signature.name} is missing (the run was not signed, or its signature "
                "was removed)"], None
    principals = _ssh_keygen("-Y", "find-principals", "-s", str(signature), "-f", str(allowed_signers))
    if principals.returncode != 0:
        return [f"signature: {signature.name} was made by a key not in {allowed_signers} "
                f"({_said(principals)})"], None
    principal = principals.stdout.decode().split()[0]
    done = _ssh_keygen("-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", NAMESPACE,
                       "-s", str(signature), stdin=manifest.read_bytes())
    if done.returncode != 0:
        return [f"signature: {manifest.name} was changed after it was signed: the signature by "
                f"{principal} does not match it ({_said(done)})"], None
    return [], principal
