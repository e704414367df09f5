"""Check vCenter's TLS certificate against `vsphere.thumbprint` / `vsphere.caCertificate` before any login.

pulumi-vsphere has no CA or thumbprint setting: its provider verifies vCenter only against the trust store
of the machine running `pulumi` (Go's TLS stack). So `VsphereAccess` runs this file first, every preview
and every update, as a `command.local.run` on that machine (`python -c <this file>`), and configures the
provider (which logs in with the password) only with this check's output: a certificate that matches
neither is refused before the password is sent anywhere.

Standard library only, on purpose: it runs as a script of its own. Input through the environment (data,
never code): CHT_VCENTER_HOST, CHT_VCENTER_PORT, CHT_VCENTER_THUMBPRINT (SHA-1, any case, colons optional),
CHT_VCENTER_CA_PEM (PEM bundle), CHT_CONFIG_KEY (how the config names the vsphere section, for messages).
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import sys

TIMEOUT_SECONDS = 20


class CheckFailed(Exception):
    """vCenter's certificate is not the one configured, or vCenter cannot be reached; the message says why."""


def thumbprint_of(der: bytes) -> str:
    """A certificate's SHA-1 thumbprint as vCenter shows it: upper-case hex pairs joined by colons."""
    digest = hashlib.sha1(der).hexdigest().upper()  # vCenter's thumbprints are SHA-1
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _normal(thumbprint: str) -> str:
    return thumbprint.replace(":", "").strip().upper()


def _peer_certificate(host: str, port: int, context: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection((host, port), timeout=TIMEOUT_SECONDS) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return tls.getpeercert(binary_form=True) or b""


def check(host: str, port: int, thumbprint: str | None, ca_pem: str | None, key: str = "vsphere") -> str:
    """What was verified (one line), or CheckFailed. Both the thumbprint and the CA must hold when both are set."""
    if not thumbprint and not ca_pem:
        raise CheckFailed(f"{key}.thumbprint: nothing to verify vCenter's certificate against; set it or {key}.caCertificate")
    where = f"vCenter {host}:{port}"
    verified = []
    if ca_pem:
        try:
            context = ssl.create_default_context(cadata=ca_pem)
        except (ssl.SSLError, ValueError) as error:
            raise CheckFailed(f"{key}.caCertificate: is not a usable PEM CA bundle ({error})") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            der = _peer_certificate(host, port, context)
        except ssl.SSLCertVerificationError as error:
            raise CheckFailed(
                f"{key}.caCertificate: {where} presented a certificate that does not verify against the configured "
                f"CA bundle ({error.verify_message}); nothing was sent to it. Check the bundle with the vCenter team "
                "(vCenter's own CA certificates: https://<vcenter>/certs/download.zip)"
            ) from None
        except (OSError, ssl.SSLError) as error:
            raise CheckFailed(f"{key}.server: cannot reach {where} over TLS ({error})") from None
        verified.append(f"certificate {thumbprint_of(der)} verifies against {key}.caCertificate for {host}")
    if thumbprint:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the pin below is the check
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            der = _peer_certificate(host, port, context)
        except (OSError, ssl.SSLError) as error:
            raise CheckFailed(f"{key}.server: cannot reach {where} over TLS ({error})") from None
        seen = thumbprint_of(der)
        if _normal(seen) != _normal(thumbprint):
            raise CheckFailed(
                f"{key}.thumbprint: {where} presented a certificate with SHA-1 thumbprint {seen}, not the configured "
                f"{thumbprint}; nothing was sent to it. If vCenter's certificate was renewed, confirm the new "
                f"thumbprint with the vCenter team and set {key}.thumbprint to it; otherwise something is "
                "intercepting the connection"
            )
        verified.append(f"certificate thumbprint {seen} matches {key}.thumbprint")
    return f"{where}: " + "; ".join(verified)


def protection(host: str, thumbprint: str | None, ca_pem: str | None, insecure: bool, key: str = "vsphere") -> str:
    """What protects the program's own vCenter connection, for the plan and the stack output."""
    if insecure:
        return (
            f"{key}.insecure is true: the program sends its vCenter password to {host} without verifying its "
            "certificate (the provider runs with allow_unverified_ssl), and so do the CPI and CSI. Labs only."
        )
    pins = " and ".join(
        what for what, given in ((f"{key}.thumbprint", thumbprint), (f"{key}.caCertificate", ca_pem)) if given
    )
    return (
        f"Before the vSphere provider logs in, every preview and update checks {host}'s certificate against "
        f"{pins} on this machine and stops on a mismatch; nothing is sent to vCenter first. The provider then "
        "verifies the certificate again against this machine's trust store (pulumi-vsphere has no CA or "
        "thumbprint setting): vCenter's CA must be trusted here, e.g. `SSL_CERT_FILE=<the CA bundle> pulumi up` "
        "on Linux, or the CA added to the system store; otherwise the provider stops with an x509 error."
    )


def main() -> int:
    env = os.environ
    try:
        print(
            check(
                env["CHT_VCENTER_HOST"],
                int(env.get("CHT_VCENTER_PORT") or 443),
                env.get("CHT_VCENTER_THUMBPRINT") or None,
                env.get("CHT_VCENTER_CA_PEM") or None,
                env.get("CHT_CONFIG_KEY") or "vsphere",
            )
        )
    except CheckFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
