"""Shared fixtures.

Whole stacks are evaluated once per test session (the 50-county stack costs seconds) and many tests
assert over that record. Component tests use `record()` instead, which installs fresh mocks per run
with preview=False, so an output the mocks did not resolve fails loudly instead of passing vacuously.
"""

from __future__ import annotations

import pytest

from config.validate import required_secrets
from offline import plan, stackfile
from offline.engine import Evaluation


def raw_config(stack: str, **overrides) -> tuple[dict, frozenset[str]]:
    """A stack file's `cht-hosting:` keys as plain values (what validation receives), secrets included."""
    values, secret_keys = stackfile.raw(stackfile.load(stack))
    values.update(overrides)
    for key in required_secrets(values):
        values.setdefault(key, "[secret]")
        secret_keys = secret_keys | {key}
    return values, secret_keys


@pytest.fixture
def stack_config():
    """Loads any `Pulumi.<stack>.yaml` as the CLI would hand it to the program: `project:key` -> string,
    `secure:` values (and secrets the stack needs but leaves out) as placeholders marked secret."""

    def load(stack: str, **overrides) -> tuple[dict[str, str], list[str]]:
        file = stackfile.load(stack, overrides=overrides or None)
        config, secrets = dict(file.config), list(file.secret_keys)
        values, _ = stackfile.raw(file)
        for key in required_secrets(values):
            config.setdefault(f"cht-hosting:{key}", stackfile.PLACEHOLDER)
            secrets.append(f"cht-hosting:{key}")
        return config, secrets

    return load


@pytest.fixture(scope="session")
def prod() -> Evaluation:
    evaluation, _ = plan.run("prod")
    return evaluation


@pytest.fixture(scope="session")
def prod_counties():
    from config.validate import validate

    return validate(*raw_config("prod")).counties


@pytest.fixture(scope="session")
def prod_cht(prod) -> Evaluation:
    """Every prod county's ChtProject: the whole prod stack, evaluated once per session."""
    return prod


@pytest.fixture(scope="session")
def prod_storage() -> Evaluation:
    """The prod stack's CPI -> CSI -> StorageClass chain on a test Provider, built once for the storage tests."""
    from tests.storage_stack import build, stack_config

    return build(stack_config())
