"""What the mock engine answers in place of vCenter, the cluster and the secret generators.

Every value is derived from the resource's name, so two runs of the same stack (two branches of a pull
request) produce identical output. Values that stand in for secrets are recorded in `SECRET_VALUES` so
the plan can redact wherever they surface.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from pulumi.runtime import MockCallArgs, MockResourceArgs

SECRET_VALUES: set[str] = set()
_NAMESPACE = uuid.UUID("6f1d3c1e-9a52-4c3e-8a55-2b7d1f0c9e11")


def digest(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def fake_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def fake_secret(kind: str, name: str, length: int = 24) -> str:
    """A URL-safe stand-in for a generated secret, remembered for redaction."""
    value = f"mock{kind}{digest(kind, name, length=max(length - len(kind) - 4, 8))}"
    SECRET_VALUES.add(value)
    return value


def _private_key(args: MockResourceArgs) -> dict[str, Any]:
    algorithm = args.inputs.get("algorithm", "ED25519")
    # The key type OpenSSH writes for each algorithm pulumi-tls offers.
    curve = str(args.inputs.get("ecdsaCurve", "P224")).removeprefix("P")
    key_type = {"ED25519": "ssh-ed25519", "RSA": "ssh-rsa", "ECDSA": f"ecdsa-sha2-nistp{curve}"}[algorithm]
    key = fake_secret("key", args.name, 48)
    public = f"{key_type} AAAAmock{digest('pub', args.name, length=40)} {args.name}"
    return {
        "privateKeyOpenssh": key,
        "privateKeyPem": key,
        "publicKeyOpenssh": public,
        "publicKeyPem": f"mock-public-pem-{digest('pem', args.name)}",
        "publicKeyFingerprintSha256": f"SHA256:{digest('fp', args.name, length=43)}",
    }


def _virtual_machine(args: MockResourceArgs) -> dict[str, Any]:
    return {
        "uuid": fake_uuid("vm", args.name).upper(),  # vCenter reports BIOS UUIDs in upper case
        "moid": f"vm-{int(digest('moid', args.name, length=6), 16) % 100000}",
        "powerState": "on",
    }


def _k3s_yaml(name: str) -> str:
    """A kubeconfig shaped like the one k3s writes (/etc/rancher/k3s/k3s.yaml), with dummy PEM data."""
    ca = base64.b64encode(f"-----BEGIN CERTIFICATE-----\nmockca{digest('ca', name)}\n-----END CERTIFICATE-----\n".encode()).decode()
    cert = base64.b64encode(f"-----BEGIN CERTIFICATE-----\nmockcrt{digest('crt', name)}\n-----END CERTIFICATE-----\n".encode()).decode()
    key_text = f"-----BEGIN EC PRIVATE KEY-----\n{fake_secret('kubekey', name, 40)}\n-----END EC PRIVATE KEY-----\n"
    key = base64.b64encode(key_text.encode()).decode()
    SECRET_VALUES.add(key)
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        "    server: https://127.0.0.1:6443\n"
        "  name: default\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: default\n"
        "    user: default\n"
        "  name: default\n"
        "current-context: default\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: default\n"
        "  user:\n"
        f"    client-certificate-data: {cert}\n"
        f"    client-key-data: {key}\n"
    )


def _remote_command(args: MockResourceArgs) -> dict[str, Any]:
    create = str(args.inputs.get("create") or "")
    stdout = _k3s_yaml(args.name) if create.endswith("cat /etc/rancher/k3s/k3s.yaml") else ""
    return {"stdout": stdout, "stderr": ""}


RESOURCE_OUTPUTS: dict[str, Callable[[MockResourceArgs], dict[str, Any]]] = {
    "command:remote:Command": _remote_command,
    "random:index/randomPassword:RandomPassword": lambda a: {
        "result": fake_secret("pw", a.name, int(a.inputs.get("length", 24)))
    },
    "random:index/randomUuid:RandomUuid": lambda a: {"result": fake_uuid("random", a.name)},
    "random:index/randomId:RandomId": lambda a: {
        "hex": digest("id", a.name, length=2 * int(a.inputs.get("byteLength", 8))),
        "b64Url": digest("b64", a.name),
    },
    "tls:index/privateKey:PrivateKey": _private_key,
    "vsphere:index/virtualMachine:VirtualMachine": _virtual_machine,
    "vsphere:index/role:Role": lambda a: {"id": f"role-{digest('role', a.name, length=6)}"},
}


def _template(args: MockCallArgs) -> dict[str, Any]:
    return {
        "id": fake_uuid("template", str(args.args.get("name"))),
        "guestId": "ubuntu64Guest",
        "scsiType": "pvscsi",
        "firmware": "efi",
        "hardwareVersion": 19,
        "disks": [{"size": 20, "thinProvisioned": True, "eagerlyScrub": False, "label": "disk0", "unitNumber": 0}],
        "networkInterfaceTypes": ["vmxnet3"],
    }


INVOKE_RESULTS: dict[str, Callable[[MockCallArgs], dict[str, Any]]] = {
    # The vCenter certificate check (components/vsphere/tls_check.py) needs vCenter: not run offline.
    "command:local:run": lambda a: {"stdout": "not checked: offline plan (no vCenter)\n", "stderr": ""},
    "vsphere:index/getDatacenter:getDatacenter": lambda a: {"id": "datacenter-3", "name": a.args.get("name")},
    "vsphere:index/getComputeCluster:getComputeCluster": lambda a: {
        "id": "domain-c8",
        "resourcePoolId": "resgroup-9",
        "name": a.args.get("name"),
    },
    "vsphere:index/getResourcePool:getResourcePool": lambda a: {"id": f"resgroup-{digest('rp', str(a.args.get('name')), length=4)}"},
    "vsphere:index/getDatastore:getDatastore": lambda a: {"id": "datastore-11", "name": a.args.get("name")},
    "vsphere:index/getNetwork:getNetwork": lambda a: {"id": "network-13", "name": a.args.get("name"), "type": "Network"},
    "vsphere:index/getVirtualMachine:getVirtualMachine": _template,
    "vsphere:index/getHost:getHost": lambda a: {"id": f"host-{digest('host', str(a.args.get('name')), length=4)}"},
    "vsphere:index/getFolder:getFolder": lambda a: {"id": f"group-v{digest('folder', str(a.args.get('path')), length=4)}"},
    # Read-only is a system role (id -2); a custom role gets an id of its own.
    "vsphere:index/getRole:getRole": lambda a: {
        "id": "-2" if a.args.get("label") == "Read-only" else f"role-{digest('role-label', str(a.args.get('label')), length=6)}",
        "label": a.args.get("label"),
    },
}
