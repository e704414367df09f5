"""config/secrets.py is the one table of secret keys: loading, validation and the README follow it."""

import dataclasses

from config import Secrets, reference
from config.secrets import SECRETS
from config.validate import KNOWN_KEYS, required_secrets


def test_every_secret_row_is_a_field_of_secrets_and_nothing_else_is():
    assert [f.name for f in dataclasses.fields(Secrets)] == [s.field for s in SECRETS]


def test_every_secret_row_is_a_known_key_and_in_the_reference():
    text = reference.render()
    for spec in SECRETS:
        assert spec.key in KNOWN_KEYS
        assert f"| `cht-hosting:{spec.key}` | {spec.note} |" in text


def test_required_secrets_follow_the_table_and_the_storage_account():
    assert required_secrets({}) == ["vspherePassword"]
    assert required_secrets({"clusterMode": "existing"}) == []
    assert required_secrets({"vsphere": {"storageUser": "k8s-cns@vsphere.local"}}) == [
        "vspherePassword",
        "vsphereStoragePassword",
    ]


def test_storage_password_falls_back_to_the_vsphere_password():
    assert Secrets(vsphere_password="a").storage_password == "a"
    assert Secrets(vsphere_password="a", vsphere_storage_password="b").storage_password == "b"
