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

from .errors import PROJECT, ConfigError
from .model import County, StackConfig
from .validate import SECRET_KEYS, validate, warnings

__all__ = ["ConfigError", "County", "Secrets", "Stack", "StackConfig", "load", "read_raw", "warnings"]


@dataclass(frozen=True)
class Secrets:
    """Operator-supplied secrets, never plain values."""

    vsphere_password: pulumi.Output[str] | None = None
    vsphere_storage_password: pulumi.Output[str] | None = None
    kubeconfig: pulumi.Output[str] | None = None
    migrated_credentials: pulumi.Output[dict] | None = None
    """county -> {user, password, secret, uuid}, for counties migrated from Docker Compose."""

    def credentials_for(self, county: str) -> pulumi.Output[dict] | None:
        """The migrated credentials of one county (a secret Output), or None when the stack has none."""
        if self.migrated_credentials is None:
            return None
        return self.migrated_credentials.apply(lambda all_: _county_credentials(all_, county))


_CREDENTIAL_KEYS = ("user", "password", "secret", "uuid")


def _county_credentials(all_credentials: Any, county: str) -> dict | None:
    entry = (all_credentials or {}).get(county) if isinstance(all_credentials, dict) else None
    if entry is None:
        return None
    missing = [k for k in _CREDENTIAL_KEYS if not isinstance(entry.get(k), str) or not entry.get(k)]
    if missing:
        raise ConfigError(
            [f"{PROJECT}:migratedCredentials.{county}: missing {', '.join(missing)}; set each with "
             f"`pulumi config set --secret --path 'migratedCredentials.{county}.<key>' ...`"]
        )
    return {k: entry[k] for k in _CREDENTIAL_KEYS}


@dataclass(frozen=True)
class Stack:
    config: StackConfig
    secrets: Secrets


def _all_keys() -> set[str]:
    # pulumi.Config has no way to list keys; the runtime's maps do (set_all_config, or PULUMI_CONFIG).
    return set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return "[secret]"


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
    stack_config = validate(raw, secret_keys)
    cfg = pulumi.Config(PROJECT)
    return Stack(
        config=stack_config,
        secrets=Secrets(
            vsphere_password=cfg.get_secret("vspherePassword"),
            vsphere_storage_password=cfg.get_secret("vsphereStoragePassword"),
            kubeconfig=cfg.get_secret("kubeconfig"),
            migrated_credentials=cfg.get_secret_object("migratedCredentials"),
        ),
    )
