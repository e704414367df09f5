"""The one table of secret config keys: it drives validation, loading and the config reference (docs/config-reference.md).

Secrets live in keys of their own (never inside an object, whose secret leaves would reach the
program as plain text). Adding a secret is one `SecretSpec` row; `Secrets` gains its field from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic.alias_generators import to_snake

from . import grammar

# The CouchDB credentials a county brought over from Docker Compose keeps (couchdb-migration get-env).
CREDENTIAL_KEYS = ("user", "password", "secret", "uuid")
# What validation sees in place of a secret's text (it checks shapes, never values).
SECRET_MASK = "[secret]"
# What the offline plan hands the program for a secret it cannot decrypt (offline/stackfile.py): never a real
# value, so two such stand-ins are not "the same key".
OFFLINE_PLACEHOLDER = "offline-plan-placeholder-secret"


@dataclass(frozen=True)
class SecretSpec:
    key: str
    """The config key (`cht-hosting:<key>`)."""
    modes: tuple[str, ...]
    """The cluster modes that read it; set in another mode, it is refused (it would be ignored)."""
    required: bool
    """Required in those modes (a secret needed only with another key is checked with that key)."""
    shape: Literal["text", "object"]
    note: str
    """What the README reference says about it."""
    needed_when: str | None = None
    """A config path (`backup`, `vsphere.storageUser`): the secret is required exactly when that value is set, and
    refused without it."""
    unused: str = "nothing uses it"
    """What setting it without `needed_when` would mean (the refusal says it)."""
    grammar: Callable[[str], str | None] | None = None
    """What is wrong with its text, or None (validation reads the value for it, and never shows it)."""
    distinct_from: str | None = None
    """Another secret key this one must not equal (validation compares the two values, and never shows them)."""
    why: str = ""
    """Appended to the message when it is missing: why it is needed (e.g. since when, and what to create)."""

    @property
    def field(self) -> str:
        """Its attribute on `config.Secrets`."""
        return to_snake(self.key)


BOTH_MODES = ("vsphere-k3s", "existing")

# A stack from before the etcd snapshots had keys of their own has only Velero's pair: say what changed.
ETCD_KEYS_WHY = (
    "etcd snapshots no longer use Velero's backupAccessKeyId/backupSecretAccessKey, so that a server's key cannot "
    "delete the county backups; create a key pair allowed only under backup.etcd.folder (docs/backups.md#the-keys) "
    "and set both etcdBackupAccessKeyId and etcdBackupSecretAccessKey"
)

SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "vspherePassword",
        ("vsphere-k3s",),
        True,
        "text",
        "Password of `vsphere.user`. Required in `vsphere-k3s` mode.",
    ),
    SecretSpec(
        "vsphereStoragePassword",
        ("vsphere-k3s",),
        False,
        "text",
        "Password of `vsphere.storageUser`; required exactly when `vsphere.storageUser` is set (without it the "
        "CPI and CSI use `vsphere.user` and `vspherePassword`).",
        needed_when="vsphere.storageUser",
        unused="the CPI and CSI would log in as vsphere.user with this password",
    ),
    SecretSpec(
        "kubeconfig",
        ("existing",),
        False,
        "text",
        "`existing` mode: the kubeconfig of the cluster to deploy onto; default: the operator's own "
        "(`~/.kube/config`, or `$KUBECONFIG`).",
    ),
    SecretSpec(
        "migratedCredentials",
        BOTH_MODES,
        False,
        "object",
        "Counties migrated from Docker Compose: `<county>: {user, password, secret, uuid}`, the "
        "values `couchdb-migration get-env` prints; set leaf by leaf with "
        "`pulumi config set --secret --path 'migratedCredentials.<county>.password' ...`.",
    ),
    SecretSpec(
        "backupAccessKeyId",
        BOTH_MODES,
        False,
        "text",
        "Velero's access key to the backup bucket (`backup.s3`), allowed only under `backup.counties.prefix` "
        "(docs/backups.md#the-keys); required exactly when `backup` is set. It reaches Velero through the Secret "
        "`velero/velero-s3-credentials`: never a command line or a log.",
        needed_when="backup",
    ),
    SecretSpec(
        "backupSecretAccessKey",
        BOTH_MODES,
        False,
        "text",
        "Secret key of `backupAccessKeyId`; required exactly when `backup` is set.",
        needed_when="backup",
    ),
    SecretSpec(
        "etcdBackupAccessKeyId",
        ("vsphere-k3s",),
        False,
        "text",
        "The k3s servers' own access key to the backup bucket for etcd snapshots, allowed only under "
        "`backup.etcd.folder` (docs/backups.md#the-keys), never Velero's; required exactly when `backup` is set in "
        "`vsphere-k3s` mode. It reaches the servers on stdin into a root-only k3s drop-in: never a command line or a log.",
        needed_when="backup",
        unused="no etcd snapshots go to the bucket",
        distinct_from="backupAccessKeyId",
        why=ETCD_KEYS_WHY,
    ),
    SecretSpec(
        "etcdBackupSecretAccessKey",
        ("vsphere-k3s",),
        False,
        "text",
        "Secret key of `etcdBackupAccessKeyId`; required exactly when `backup` is set in `vsphere-k3s` mode.",
        needed_when="backup",
        unused="no etcd snapshots go to the bucket",
        why=ETCD_KEYS_WHY,
    ),
    SecretSpec(
        "monitoringSmtpPassword",
        BOTH_MODES,
        False,
        "text",
        "Password of the SMTP login `monitoring.email.username`; required exactly when it is set. It reaches "
        "Alertmanager only inside the Secret `monitoring/cht-alertmanager-config`.",
        needed_when="monitoring.email.username",
        unused="it would never be used",
    ),
    SecretSpec(
        "monitoringWebhookUrl",
        BOTH_MODES,
        False,
        "text",
        "A webhook URL that carries a token (in its path, query or user part), instead of "
        "`monitoring.webhook.url`; setting it sends alerts there. Checked as a URL; messages never show it.",
        grammar=lambda value: grammar.webhook_url_problem(value, allow_credentials=True),
    ),
    SecretSpec(
        "monitoringHeartbeatUrl",
        BOTH_MODES,
        False,
        "text",
        "The heartbeat's URL when it carries a token (a Healthchecks ping URL), instead of "
        "`monitoring.heartbeat.url`; needs `monitoring.heartbeat` (for its interval). Checked as a URL; messages "
        "never show it.",
        grammar=lambda value: grammar.webhook_url_problem(value, allow_credentials=True, secret="monitoringHeartbeatUrl"),
    ),
)

BY_KEY: dict[str, SecretSpec] = {spec.key: spec for spec in SECRETS}


def value_at(raw: object, path: str) -> object:
    """The raw config value at a dotted path, or None."""
    node = raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def needed(spec: SecretSpec, raw: Mapping, mode: str) -> bool:
    """Whether this config needs the secret set."""
    if mode not in spec.modes:
        return False
    return spec.required or (spec.needed_when is not None and value_at(raw, spec.needed_when) not in (None, ""))
