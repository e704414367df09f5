"""The one table of edits `deployedState.accept` takes: each is a refused edit whose procedure ends by accepting it
for one update. Validation, the guards and the config reference all read this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The runbook of each procedure a refusal names: page under docs/, and the section of it when not the whole
# page (tests/test_guards.py checks that each page and heading exists).
PROCEDURES: dict[str, tuple[str, str | None]] = {
    "rename": ("runbooks/rename-county.md", None),
    "resize": ("runbooks/grow-county.md", "Resizing a county's CouchDB cluster"),
    "grow": ("runbooks/grow-county.md", None),
    "rotate": ("runbooks/rotate-credentials.md", "Rotating a county's CouchDB admin user"),
    "restore": ("runbooks/restore-county.md", None),
    "upgrade-cht": ("runbooks/upgrade-cht.md", None),
    "upgrade-k3s": ("runbooks/upgrade-k3s.md", None),
    "replace-node": ("runbooks/replace-node.md", None),
    "encrypt": ("runbooks/secrets-encryption.md", None),
    "storage-class": ("config-checks.md", "Renaming the StorageClass"),
    "backup-off": ("config-checks.md", "Turning backups off"),
    "remove-server": ("runbooks/remove-node.md", "A deployed server: lift its VM's protection first"),
    "move-stacks": ("runbooks/move-stacks.md", "Splitting into a platform stack and county stacks"),
}


def where(name: str) -> str:
    """`docs/<page>`, with its section when the page holds several."""
    page, section = PROCEDURES[name]
    return f"docs/{page}" + (f", '{section}'" if section else "")


@dataclass(frozen=True)
class Acceptance:
    form: str
    """How the entry is written (placeholders in <>)."""
    pattern: str
    """Its grammar (a regex, matched whole)."""
    procedure: str
    """The procedure (a PROCEDURES key) that ends by adding it."""


COUCHDB_USER = Acceptance(
    "counties.<county>.couchdbUser",
    r"counties\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.couchdbUser",
    "rotate",
)
SECRETS_ENCRYPTION = Acceptance(
    "k3s.secretsEncryption", r"k3s\.secretsEncryption", "encrypt"
)

STORAGE_CLASS = Acceptance(
    "storageClass.name", r"storageClass\.name", "storage-class"
)
BACKUP_REMOVED = Acceptance("backup", r"backup", "backup-off")
# A deployed server removed once its VM is unprotected (`pulumi state unprotect`): its VM is protected.
REMOVE_SERVER = Acceptance(
    "controlPlane.nodes.<node>", r"controlPlane\.nodes\.[a-z0-9]([-a-z0-9]*[a-z0-9])?", "remove-server"
)

ACCEPTANCES: tuple[Acceptance, ...] = (COUCHDB_USER, SECRETS_ENCRYPTION, STORAGE_CLASS, BACKUP_REMOVED, REMOVE_SERVER)


def matching(entry: str) -> Acceptance | None:
    return next((a for a in ACCEPTANCES if re.fullmatch(a.pattern, entry)), None)


def acceptable_change(value: str) -> str:
    """A `deployedState.accept` entry: one of the forms above."""
    if matching(value) is None:
        forms = "; ".join(f"{a.form} ({where(a.procedure)})" for a in ACCEPTANCES)
        raise ValueError(
            f"'{value}' cannot be accepted; only these edits can, each at the end of its procedure: {forms}; "
            "every other refused edit has a procedure instead"
        )
    return value


def described() -> str:
    """The reference's sentence about the accepted forms."""
    forms = ", ".join(f"`{a.form}` ({where(a.procedure)})" for a in ACCEPTANCES)
    return f"Edits of deployed values to accept for one update, each at the end of its procedure: {forms}; remove the entry after the update."
