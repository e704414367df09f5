"""Stack config: the only place that reads `pulumi.Config`.

`load()` reads every `cht-hosting:*` key once, validates it all (listing every problem at once) and
returns the validated, frozen `StackConfig` with the secrets as Pulumi secret Outputs beside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from . import deployed, guards, layout
from .errors import PROJECT, ConfigError
from .model import County, StackConfig
from .secrets import CREDENTIAL_KEYS, SECRET_MASK, SECRETS
from .validate import ENGINE_NAMESPACES, SECRET_KEYS, validate, warnings

__all__ = [
    "ConfigError", "County", "Secrets", "Stack", "StackConfig", "deployed", "guards", "layout", "load", "read_raw", "warnings",
]


@dataclass(frozen=True)
class Secrets:
    """Operator-supplied secrets, never plain values: one field per row of `config.secrets.SECRETS`."""

    vsphere_password: pulumi.Output[str] | None = None
    vsphere_storage_password: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None
    migrated_credentials: pulumi.Output[dict] | None = None
    """county -> {user, password, secret, uuid}, for counties migrated from Docker Compose."""
    backup_access_key_id: pulumi.Output[str] | None = None
    backup_secret_access_key: pulumi.Output[str] | None = None
    """Velero's S3 key pair (`backup`)."""
    etcd_backup_access_key_id: pulumi.Output[str] | None = None
    etcd_backup_secret_access_key: pulumi.Output[str] | None = None
    """The k3s servers' own S3 key pair for etcd snapshots (vsphere-k3s mode)."""
    monitoring_smtp_password: pulumi.Output[str] | None = None
    monitoring_webhook_url: pulumi.Output[str] | None = None
    """A webhook URL that carries a token (else it is plain config, monitoring.webhook.url)."""
    monitoring_heartbeat_url: pulumi.Output[str] | None = None
    """The heartbeat URL when it carries a token (else it is plain config, monitoring.heartbeat.url)."""

    @property
    def storage_password(self) -> pulumi.Output[str] | None:
        """The password of the account the CPI and CSI use: `vsphere.storageUser`'s, else `vsphere.user`'s.

        Validation requires `vsphereStoragePassword` exactly when `vsphere.storageUser` is set, so the two
        fall back together (`VsphereConfig.storage_account`).
        """
        return self.vsphere_storage_password or self.vsphere_password

    def credentials_for(self, county: str) -> pulumi.Output[dict] | None:
        """The migrated credentials of one county (a secret Output), or None when the stack has none."""
        if self.migrated_credentials is None:
            return None
        return self.migrated_credentials.apply(lambda all_: _county_credentials(all_, county))


def _county_credentials(all_credentials: Any, county: str) -> dict | None:
    # Validation checked every migrated county's entry (checks.cht_settings); this only selects it.
    entry = (all_credentials or {}).get(county) if isinstance(all_credentials, dict) else None
    if not isinstance(entry, dict):
        return None
    return {k: entry.get(k) for k in CREDENTIAL_KEYS}


@dataclass(frozen=True)
class Stack:
    config: StackConfig
    """The deployment's config: in a split deployment, the platform's settings with every stack's counties."""
    secrets: Secrets
    """This stack's own secrets."""
    layout: layout.Layout
    """Which part of the deployment this stack registers (config/layout.py)."""

    @property
    def own_counties(self) -> dict[str, County]:
        """The counties this stack registers."""
        return {name: c for name, c in self.config.counties.items() if self.layout.own(name)}

    def county_credentials(self, county: str) -> pulumi.Output[dict] | None:
        """The existing CouchDB credentials a migrated county keeps; None for a county the program set up."""
        if self.config.counties[county].settings.migration is None:
            return None
        return self.secrets.credentials_for(county)


def _all_keys() -> set[str]:
    # pulumi.Config has no way to list keys; the runtime's maps do (set_all_config, or PULUMI_CONFIG).
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _decode(value: str) -> Any:
    # JSON's Infinity/NaN stay the words they are, so validation refuses them as numbers.
    try:
        return json.loads(value, parse_constant=lambda word: word)
    except (TypeError, ValueError, RecursionError):
        return value


def _masked(value: Any) -> Any:
    """A secret's shape without its values: key names kept, text as SECRET_MASK or "" (unset), else None."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, str):
        return SECRET_MASK if value else ""
    return None


def foreign_keys() -> list[str]:
    """Config keys of another namespace than the program's (a misspelled `cht-hostng:capacity`, a provider's)."""
    return [k for k in sorted(_all_keys()) if k.partition(":")[0] not in (PROJECT, *ENGINE_NAMESPACES)]


def read_raw() -> tuple[dict[str, Any], frozenset[str]]:
    """Every `cht-hosting:` key as plain values (secret keys excluded), and the names of the secret keys."""
    raw: dict[str, Any] = {}
    secret: set[str] = set()
    for full_key in sorted(_all_keys()):
        namespace, _, key = full_key.partition(":")
        if namespace != PROJECT:
            continue
        if runtime_config.is_config_secret(full_key) or full_key in runtime_config.get_config_secret_keys_env():
            secret.add(key)
        if key in SECRET_KEYS:
            # Presence and shape only (an object's key names, e.g. counties); values are read as Outputs below.
            raw[key] = _masked(_decode(runtime_config.get_config(full_key)))
        else:
            raw[key] = _decode(runtime_config.get_config(full_key))
    return raw, frozenset(secret)


def load() -> Stack:
    """Validate the whole stack config; raises ConfigError listing every problem."""
    raw, secret_keys = read_raw()
    # A split deployment: the platform's stack file and every county stack's counties (config/layout.py).
    shape, deployment, secret_keys, problems = layout.assemble(raw, secret_keys, pulumi.get_stack(), mask=_masked)
    if deployment is None:
        raise ConfigError(problems)
    raw = deployment
    # Read for a check and never shown: grammars, and keys that must differ from another.
    checked = {s.key for s in SECRETS if s.grammar is not None}
    checked |= {key for s in SECRETS if s.distinct_from for key in (s.key, s.distinct_from)}
    texts = {key: runtime_config.get_config(f"{PROJECT}:{key}") for key in sorted(checked)}
    try:
        stack_config = validate(raw, secret_keys, foreign_keys(), {k: v for k, v in texts.items() if v is not None})
    except ConfigError as error:
        raise ConfigError([*problems, *error.problems]) from None
    if problems:
        raise ConfigError(problems)
    cfg = pulumi.Config(PROJECT)
    read = {"text": cfg.get_secret, "object": cfg.get_secret_object}
    return Stack(config=stack_config, secrets=Secrets(**{s.field: read[s.shape](s.key) for s in SECRETS}), layout=shape)
