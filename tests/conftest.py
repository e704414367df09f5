"""Shared fixtures.

Two kinds of stack files. The tests' own, under tests/stacks/ (`national`: 50 counties, `regional`, `k3d`,
...), hold the fixed numbers tests may assert. The operator's `Pulumi.<stack>.yaml` at the repository root
(`USER_STACKS`, discovered) are inputs the tests check only by properties that hold for any valid stack
(tests/test_stacks.py), so adding a county there never turns a test red.

Whole stacks are evaluated once per test session (the 50-county stack costs seconds) and many tests
assert over that record. Component tests use `record()` instead, which installs fresh mocks per run
with preview=False, so an output the mocks did not resolve fails loudly instead of passing vacuously.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config import layout
from config import secrets as secret_table
from config.validate import required_secrets
from offline import engine, plan, stackfile
from offline.engine import ROOT, Evaluation

STACKS = Path(__file__).resolve().parent / "stacks"
"""The tests' own stack files."""
USER_STACKS = stackfile.available_stacks(ROOT)
"""The operator's stacks: every Pulumi.<stack>.yaml at the repository root."""


# The secret keys that come with `backup` (Velero's pair; in vsphere-k3s mode the servers' etcd pair too).
BACKUP_KEYS = frozenset(s.key for s in secret_table.SECRETS if s.needed_when == "backup")


def raw_config(stack: str, root: Path = STACKS, **overrides) -> tuple[dict, frozenset[str]]:
    """A stack file's `cht-hosting:` keys as plain values (what validation receives), secrets included. A stack
    of a split deployment (config/layout.py) gets the deployment's: its platform's settings and every county."""
    values, secret_keys = stackfile.raw(stackfile.load(stack, root=root))
    _, deployment, secret_keys, problems = layout.assemble(values, secret_keys, stack, root=root)
    assert deployment is not None and not problems, problems
    values = {**deployment, **overrides}
    for key in required_secrets(values):
        values.setdefault(key, "[secret]")
        secret_keys = secret_keys | {key}
    return values, secret_keys


@pytest.fixture
def stack_config():
    """Loads any `Pulumi.<stack>.yaml` as the CLI would hand it to the program: `project:key` -> string,
    `secure:` values (and secrets the stack needs but leaves out) as placeholders marked secret."""

    def load(stack: str, root: Path = STACKS, **overrides) -> tuple[dict[str, str], list[str]]:
        file = stackfile.load(stack, root=root, overrides=overrides or None)
        config, secrets = dict(file.config), list(file.secret_keys)
        values, _ = stackfile.raw(file)
        if layout.platform_stack(values):
            return config, secrets  # a county stack: the platform stack holds the secrets
        for key in required_secrets(values):
            config.setdefault(f"cht-hosting:{key}", stackfile.PLACEHOLDER)
            secrets.append(f"cht-hosting:{key}")
        return config, secrets

    return load


@pytest.fixture(scope="session")
def national() -> Evaluation:
    """The national test stack (tests/stacks/Pulumi.national.yaml: 3 servers, 9 agents, 50 counties), evaluated once."""
    evaluation, _ = plan.run("national", stack_dir=STACKS)
    return evaluation


@pytest.fixture(scope="session")
def national_counties():
    from config.validate import validate

    return validate(*raw_config("national")).counties


@pytest.fixture(scope="session")
def national_storage() -> Evaluation:
    """The national stack's CPI -> CSI -> StorageClass chain on a test Provider, built once for the storage tests."""
    from tests.storage_stack import build, stack_config

    return build(stack_config())


def evaluate_stack(stack: str, root: Path = STACKS, **secrets: str) -> Evaluation:
    """A test stack on the mock engine with `secrets` set as secret config and every other required secret a
    placeholder."""
    file = stackfile.load(stack, root=root)
    config, secret_keys = dict(file.config), list(file.secret_keys)
    for key, value in secrets.items():
        config[f"cht-hosting:{key}"] = value
        secret_keys.append(f"cht-hosting:{key}")
    for key in required_secrets(stackfile.raw(file)[0]):
        if f"cht-hosting:{key}" not in config:
            config[f"cht-hosting:{key}"] = stackfile.PLACEHOLDER
            secret_keys.append(f"cht-hosting:{key}")
    return engine.evaluate(stack, config, secret_keys)
