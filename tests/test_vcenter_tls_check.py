"""The vCenter certificate check that runs before the vSphere provider logs in.

The check runs for real, exactly as `VsphereAccess` runs it (`python -c <bootstrap>`, the script on stdin,
inputs in the environment), against a TLS server on 127.0.0.1 with a CA and certificate made by openssl.
On the mock engine: the provider is registered only once the check has answered, and not at all when it fails.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from components.vsphere import access as access_module
from components.vsphere import tls_check
from offline import engine, fakes
from tests import tools
from tests.nodes_build import PASSWORD, build, national_config


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([tools.need("openssl"), *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a vCenter certificate it signed (localhost, 127.0.0.1), and an unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "vc.key", "-out", "vc.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "vc.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "vc.pem", cwd=d)
    return d


@pytest.fixture(scope="module")
def vcenter(pki):
    """A TLS server on loopback presenting vc.pem; serves until the module's tests are done."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "vc.pem", pki / "vc.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(2)
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    der = ssl.PEM_cert_to_DER_cert((pki / "vc.pem").read_text())
    yield {"port": listener.getsockname()[1], "thumbprint": tls_check.thumbprint_of(der)}
    stop.set()
    thread.join(timeout=5)
    listener.close()


def run_check(host: str, port: int, thumbprint: str = "", ca: str = "") -> subprocess.CompletedProcess:
    """The check as VsphereAccess runs it through command.local.run."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CHT_VCENTER_HOST": host,
        "CHT_VCENTER_PORT": str(port),
        "CHT_VCENTER_THUMBPRINT": thumbprint,
        "CHT_VCENTER_CA_PEM": ca,
        "CHT_CONFIG_KEY": "cht-hosting:vsphere",
    }
    return subprocess.run(
        [sys.executable, "-c", access_module.TLS_CHECK_COMMAND],
        input=access_module.TLS_CHECK_SOURCE, capture_output=True, text=True, env=env, timeout=60,
    )


def test_the_configured_thumbprint_passes_in_any_case_and_with_or_without_colons(vcenter):
    for pin in (vcenter["thumbprint"], vcenter["thumbprint"].lower(), vcenter["thumbprint"].replace(":", "")):
        result = run_check("127.0.0.1", vcenter["port"], thumbprint=pin)
        assert result.returncode == 0, result.stderr
        assert f"thumbprint {vcenter['thumbprint']} matches cht-hosting:vsphere.thumbprint" in result.stdout


def test_another_certificate_stops_the_run_naming_the_key(vcenter):
    wrong = ":".join(["AB"] * 20)
    result = run_check("127.0.0.1", vcenter["port"], thumbprint=wrong)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"cht-hosting:vsphere.thumbprint: vCenter 127.0.0.1:{vcenter['port']} presented a certificate with SHA-1 "
        f"thumbprint {vcenter['thumbprint']}, not the configured {wrong}; nothing was sent to it."
    )
    assert "Traceback" not in result.stderr


def test_the_configured_ca_verifies_the_certificate_and_its_host_name(vcenter, pki):
    ca = (pki / "ca.pem").read_text()
    for host in ("localhost", "127.0.0.1"):
        result = run_check(host, vcenter["port"], ca=ca)
        assert result.returncode == 0, result.stderr
        assert "verifies against cht-hosting:vsphere.caCertificate" in result.stdout


def test_a_certificate_from_another_ca_stops_the_run(vcenter, pki):
    result = run_check("localhost", vcenter["port"], ca=(pki / "other-ca.pem").read_text())
    assert result.returncode == 1
    assert result.stderr.startswith("cht-hosting:vsphere.caCertificate: vCenter localhost:")
    assert "does not verify against the configured CA bundle" in result.stderr and "nothing was sent" in result.stderr


def test_with_both_configured_both_must_hold(vcenter, pki):
    ca = (pki / "ca.pem").read_text()
    assert run_check("localhost", vcenter["port"], thumbprint=vcenter["thumbprint"], ca=ca).returncode == 0
    assert run_check("localhost", vcenter["port"], thumbprint=":".join(["01"] * 20), ca=ca).returncode == 1
    other = (pki / "other-ca.pem").read_text()
    assert run_check("localhost", vcenter["port"], thumbprint=vcenter["thumbprint"], ca=other).returncode == 1


def test_an_unreachable_vcenter_is_named_by_its_key():
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    result = run_check("127.0.0.1", port, thumbprint=":".join(["AB"] * 20))
    assert result.returncode == 1 and result.stderr.startswith(f"cht-hosting:vsphere.server: cannot reach vCenter 127.0.0.1:{port}")


# --- in the program: the provider waits for the check ------------------------------------------------------


def provider_registrations(monkeypatch, check) -> tuple[list[str], Exception | None]:
    seen: list[str] = []
    original = engine.FakeCloud.new_resource

    def new_resource(self, args):
        seen.append(args.typ)
        return original(self, args)

    monkeypatch.setattr(engine.FakeCloud, "new_resource", new_resource)
    monkeypatch.setitem(fakes.INVOKE_RESULTS, "command:local:run", check)
    try:
        build(national_config(), export_handles=False)
    except Exception as error:  # the failed check surfaces as the program's error
        return seen, error
    return seen, None


def test_the_provider_is_configured_only_after_the_check_answered(monkeypatch):
    calls = []

    def check(args):
        calls.append(dict(args.args))
        return {"stdout": "ok\n", "stderr": ""}

    seen, error = provider_registrations(monkeypatch, check)
    assert error is None and "pulumi:providers:vsphere" in seen
    (call,) = calls
    assert call["interpreter"] == [sys.executable, "-c"] and call["command"] == access_module.TLS_CHECK_COMMAND
    assert call["stdin"] == access_module.TLS_CHECK_SOURCE
    assert call["environment"]["CHT_VCENTER_HOST"] == "vcenter.moh.example.org"
    assert call["environment"]["CHT_VCENTER_THUMBPRINT"] == national_config().vsphere.thumbprint
    assert PASSWORD not in repr(call)  # the check never sees the password


FAILED_CHECK = """
import json
from offline import engine, fakes
from tests import tools
from tests.nodes_build import build, national_config

seen = []
original = engine.FakeCloud.new_resource


def new_resource(self, args):
    seen.append(args.typ)
    return original(self, args)


def check(args):
    raise Exception("cht-hosting:vsphere.thumbprint: vCenter presented another certificate")


engine.FakeCloud.new_resource = new_resource
fakes.INVOKE_RESULTS["command:local:run"] = check
try:
    build(national_config(), export_handles=False)
    error = None
except Exception as failure:
    error = str(failure)
print(json.dumps({"seen": seen, "error": error}))
"""


def test_a_failed_check_means_no_provider_and_so_no_login():
    # In a fresh interpreter: a program that fails inside the SDK's event loop leaves CPython 3.11's
    # recursion bookkeeping off for the rest of a pytest session (a later ast.parse raises SystemError).
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", FAILED_CHECK], cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["error"] and "another certificate" in outcome["error"]
    assert "pulumi:providers:vsphere" not in outcome["seen"]
    assert "vsphere:index/virtualMachine:VirtualMachine" not in outcome["seen"]
    # That the program ran up to the check is the error itself: only the check raises "another certificate".
    # (Whether the component's own registration reached the engine before the failure is a race in the SDK.)


def test_insecure_runs_no_check_and_says_so(monkeypatch):
    calls = []
    monkeypatch.setitem(fakes.INVOKE_RESULTS, "command:local:run", lambda args: calls.append(args) or {})
    cfg = national_config()
    insecure = cfg.model_copy(update={"vsphere": cfg.vsphere.model_copy(update={"insecure": True, "thumbprint": None})})
    ev = build(insecure, export_handles=False).evaluation
    assert calls == []
    assert ev.named("vsphere-provider").inputs["allowUnverifiedSsl"] == "true"  # provider config: strings


def test_the_plan_states_what_protects_the_connection():
    text = tls_check.protection("vc.example.org", "AB:CD", None, False, key="cht-hosting:vsphere")
    assert "checks vc.example.org's certificate against cht-hosting:vsphere.thumbprint" in text
    assert "SSL_CERT_FILE" in text and "trust store" in text
    assert "without verifying" in tls_check.protection("vc", None, None, True)
