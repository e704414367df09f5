"""One test per grammar rule and stack-file rule, with the exact message (tests/hostile.py throws ~80 more at
the whole program; tests/test_rendered_meaning.py generates values)."""

from __future__ import annotations

import pytest

from config import ConfigError
from config.validate import foreign_key_problems, required_secrets, validate
from offline import stackfile
from tests.hostile import CREDENTIALS, KEY, STACKS, Case
from tests.test_guards import section

THUMBPRINT = section("vsphere")["thumbprint"]


def problems(*, foreign=(), **overrides) -> list[str]:
    file = stackfile.load("guarded", root=STACKS, overrides={f"cht-hosting:{k}": v for k, v in overrides.items()})
    raw, secret_keys = stackfile.raw(file)
    for key in required_secrets(raw):
        raw.setdefault(key, "[secret]")
        secret_keys |= {key}
    try:
        validate(raw, secret_keys, foreign)
    except ConfigError as error:
        return error.problems
    return []


def county(**settings) -> dict:
    return {**section("counties"), "kisumu": settings}


def test_host_names_are_rfc_1123_without_trailing_dot_or_newline():
    for host in ("kisumu.example.org.", "kisumu.example.org\n", "kisumu example.org"):
        assert problems(counties=county(host=host)) == [
            f"cht-hosting:counties.kisumu.host: {host!r} is not a DNS host name; use lower-case letters, digits and "
            "'-' between dots (no trailing dot, no spaces), at most 63 characters between dots"
        ]
    assert problems(counties=county(host="10.20.0.9")) == [
        "cht-hosting:counties.kisumu.host: '10.20.0.9' is an IPv4 address where a DNS host name is needed"
    ]


def test_install_script_url_carries_no_shell():
    assert problems(k3s={**section("k3s"), "installScriptUrl": "https://get.k3s.io/$(reboot)"}) == [
        "cht-hosting:k3s.installScriptUrl: 'https://get.k3s.io/$(reboot)' is not a plain URL: only letters, digits "
        "and . _ ~ : / ? # @ % + = , & - are allowed (percent-encode anything else), e.g. "
        "https://mirror.moh.example.org/path"
    ]
    assert problems(k3s={**section("k3s"), "installScriptUrl": "file:///etc/passwd"}) == [
        "cht-hosting:k3s.installScriptUrl: 'file:///etc/passwd' must start with https:// or http://, e.g. "
        "https://mirror.moh.example.org/path"
    ]
    assert problems(k3s={**section("k3s"), "installScriptUrl": "https://u:p@get.k3s.io"}) == [
        "cht-hosting:k3s.installScriptUrl: 'https://u:p@get.k3s.io' carries credentials (user@); remove them, e.g. "
        "https://mirror.moh.example.org/path"
    ]


def test_ssh_keys_are_parsed_one_per_entry():
    fix = "paste one public key line (the .pub file), e.g. ssh-ed25519 AAAAC3Nza... ops@moh.example.org"
    cases = {
        KEY + "\n" + KEY: f"holds more than one line; give each key as its own entry: {fix}",
        'command="reboot" ' + KEY: "does not start with a known key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, "
        "ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com); "
        + fix,
        "ssh-ed25519 not*base64": f"the key data is not valid base64 of an SSH key; {fix}",
        KEY.replace("ssh-ed25519", "ssh-rsa", 1): f"the key data is not a ssh-rsa key; {fix}",
    }
    for key, message in cases.items():
        assert problems(ssh={"authorizedKeys": [key]}) == [f"cht-hosting:ssh.authorizedKeys[0]: {message}"]


def test_thumbprint_cannot_smuggle_insecure_flag():
    value = THUMBPRINT + "\ninsecureFlag: true"
    assert problems(vsphere={**section("vsphere"), "thumbprint": value}) == [
        f"cht-hosting:vsphere.thumbprint: {value!r} is not a SHA-1 certificate thumbprint; write 20 hex pairs "
        "separated by ':', e.g. AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01 (openssl x509 -noout "
        "-fingerprint -sha1)"
    ]


def test_ntp_entries_are_host_names_or_addresses():
    assert problems(network={**section("network"), "ntp": ["pool.ntp.org iburst\nallow all"]}) == [
        "cht-hosting:network.ntp[0]: 'pool.ntp.org iburst\\nallow all' is neither an IPv4 address nor a DNS host "
        "name (letters, digits and '-' between dots, no trailing dot, no spaces)"
    ]


def test_a_protected_network_of_every_address_is_refused_naming_the_key():
    # Each county's api-and-sentinel NetworkPolicy allows 0.0.0.0/0 except the protected networks; Kubernetes
    # refuses an except that is not a strict subset of its cidr (kubernetes pkg/apis/networking/validation/
    # validation.go ValidateIPBlock, as stored at 019c5dc, 1.35-era: "must be a strict subset of `cidr`"), so
    # 0.0.0.0/0 there failed every county at `pulumi up` after a clean plan.
    (problem,) = problems(network={**section("network"), "protectedNetworks": ["10.30.0.0/16", "0.0.0.0/0"]})
    assert problem.startswith("cht-hosting:network.protectedNetworks[1]: '0.0.0.0/0' is every address")
    assert "0.0.0.0/1 and 128.0.0.0/1" in problem
    assert problems(network={**section("network"), "protectedNetworks": ["0.0.0.0/1", "128.0.0.0/1"]}) == []
    existing = stackfile.raw(stackfile.load("k3d", root=STACKS))[0]["existingCluster"]
    file = stackfile.load("k3d", root=STACKS, overrides={
        "cht-hosting:existingCluster": {**existing, "protectedNetworks": ["0.0.0.0/0"]}})
    raw, secret_keys = stackfile.raw(file)
    for key in required_secrets(raw):
        raw.setdefault(key, "[secret]")
        secret_keys |= {key}
    with pytest.raises(ConfigError) as refused:
        validate(raw, secret_keys)
    (problem,) = refused.value.problems
    assert problem.startswith("cht-hosting:existingCluster.protectedNetworks[0]: '0.0.0.0/0' is every address")


def _hostpath(path: str, node: str = "agent-1", **more) -> dict:
    return {
        "counties": county(migration={"volumes": [{"hostPath": path, "node": node}]}),
        "migratedCredentials": {"kisumu": CREDENTIALS},
        **more,
    }


def test_host_paths_stay_out_of_k3s_the_kubelet_and_the_system():
    key = "cht-hosting:counties.kisumu.migration.volumes[0].hostPath"
    assert problems(**_hostpath("/var/lib/rancher/k3s/storage")) == [
        f"{key}: '/var/lib/rancher/k3s/storage' is inside or contains /var/lib/rancher, which belongs to the "
        "node's system, k3s or the kubelet; keep CouchDB data in a directory of its own, e.g. /srv/cht/couchdb"
    ]
    assert problems(**_hostpath("/var"))[0].startswith(f"{key}: '/var' is inside or contains /var/lib/rancher")
    assert problems(**_hostpath("/srv/../var/lib/kubelet")) == [
        f"{key}: '/srv/../var/lib/kubelet' is not a normalised absolute path; write it from / with no '..', '.', "
        "'//' or trailing '/', using letters, digits and . _ @ + -, e.g. /srv/cht/couchdb"
    ]
    assert problems(**_hostpath("/srv")) == [
        f"{key}: '/srv' is a top-level directory or a user's home; give CouchDB a directory of its own below it, "
        "e.g. /srv/cht/couchdb"
    ]
    assert problems(**_hostpath("/srv/cht/kisumu")) == []


def test_host_path_node_is_an_agent():
    assert problems(**_hostpath("/srv/cht/kisumu", node="cp-2")) == [
        "cht-hosting:counties.kisumu.migration.volumes[0].node: cp-2 is not an agent (cht-hosting:agents.nodes); "
        "CouchDB runs only on agents, name the agent whose disk holds the directory"
    ]


def test_one_migrated_volume_in_one_county_only():
    credentials = CREDENTIALS
    found = problems(
        counties={
            **section("counties"),
            "kisumu": {"migration": {"volumes": [{"volumeHandle": "fcd-1"}]}},
            "nakuru": {"migration": {"volumes": [{"volumeHandle": "fcd-1"}]}},
        },
        migratedCredentials={"kisumu": credentials, "nakuru": credentials},
    )
    assert found == [
        "cht-hosting:counties.nakuru.migration.volumes[0].volumeHandle: fcd-1 is already the volume of "
        "cht-hosting:counties.kisumu.migration.volumes[0]; a volume belongs to one CouchDB node of one county"
    ]
    nested = problems(
        counties={
            **section("counties"),
            "kisumu": {"migration": {"volumes": [{"hostPath": "/srv/cht", "node": "agent-1"}]}},
            "nakuru": {"migration": {"volumes": [{"hostPath": "/srv/cht/nakuru", "node": "agent-1"}]}},
        },
        migratedCredentials={"kisumu": credentials, "nakuru": credentials},
    )
    assert nested == [
        "cht-hosting:counties.nakuru.migration.volumes[0].hostPath: /srv/cht/nakuru on agent-1 overlaps /srv/cht "
        "of cht-hosting:counties.kisumu.migration.volumes[0]; each CouchDB node needs a directory of its own"
    ]


def test_addresses_are_never_a_dns_server_or_the_network():
    agents = section("agents")
    assert problems(agents={**agents, "nodes": {**agents["nodes"], "agent-1": "10.20.0.2"}}) == [
        "cht-hosting:agents.nodes.agent-1: 10.20.0.2 is a DNS server (cht-hosting:network.dns); use another address"
    ]
    assert problems(k3s={**section("k3s"), "apiEndpoint": "10.20.0.0"}) == [
        "cht-hosting:k3s.apiEndpoint: 10.20.0.0 is the network or broadcast address of 10.20.0.0/24; use a free "
        "host address"
    ]
    assert problems(k3s={**section("k3s"), "apiEndpoint": "10.20.0.2"}) == [
        "cht-hosting:k3s.apiEndpoint: 10.20.0.2 is a DNS server (cht-hosting:network.dns); use an address of its own"
    ]


def test_booleans_are_not_numbers_and_numbers_not_booleans():
    assert problems(controlPlane={**section("controlPlane"), "cpus": True}) == [
        "cht-hosting:controlPlane.cpus: must be a whole number, got True"
    ]
    assert problems(vsphere={**section("vsphere"), "insecure": 1}) == [
        "cht-hosting:vsphere.insecure: must be true or false, got 1"
    ]
    assert problems(agents={**section("agents"), "memoryGb": "64"}) == [
        "cht-hosting:agents.memoryGb: must be a whole number, got '64'"
    ]


def test_infinity_is_not_a_number():
    found = problems(cht={**section("cht"), "budget": {"cpu": "Infinity", "memoryGb": 8}})
    assert found == ["cht-hosting:cht.budget.cpu: must be a number, got 'Infinity'"]


def test_keys_of_other_namespaces_are_refused():
    assert foreign_key_problems(["cht-hostng:capacity", "aws:region"]) == [
        "cht-hostng:capacity: unknown namespace 'cht-hostng'; did you mean 'cht-hosting:capacity'? Fix the spelling "
        "(a key of another namespace is never read)",
        "aws:region: is not read by this program (only cht-hosting: keys are; its providers are configured from "
        "them); remove it with `pulumi config rm 'aws:region'`, or move its value under cht-hosting:",
    ]
    assert problems(foreign=["cht-hostng:capacity"])[0].startswith("cht-hostng:capacity: unknown namespace")


def test_capacity_is_listed_with_the_other_problems():
    found = problems(
        cht={**section("cht"), "budget": {"cpu": 20, "memoryGb": 8}},
        vsphere={**section("vsphere"), "insecure": "yes"},
        capacity={"onShortfall": "error"},
    )
    assert found[0] == "cht-hosting:vsphere.insecure: must be true or false, got 'yes'"
    # 3 counties' quotas: 20 CPU budgets plus the default 25 % headroom.
    assert found[1].startswith("cht-hosting:agents.nodes: the counties' quotas (budgets plus headroom) admit 75 CPU")


def test_a_pod_larger_than_an_agent_is_refused_even_when_a_shortfall_only_warns():
    found = problems(cht={**section("cht"), "budget": {"cpu": 40, "memoryGb": 8}}, capacity={"onShortfall": "warn"})
    assert len(found) == 1 and found[0].startswith("cht-hosting:counties.kisumu.budget: one pod (kisumu: couchdb)")
    assert "could never be scheduled" in found[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "Pulumi.bad.yaml: is not a mapping; a stack file starts with `config:` and the keys under it"),
        ("config: [1]\n", "Pulumi.bad.yaml: `config` is not a mapping; write one `cht-hosting:<key>: <value>` per line under it"),
        ("a: &x [1]\nconfig:\n  cht-hosting:cht: *x\n", "Pulumi.bad.yaml: line 3: YAML alias *x is not accepted in a stack file; write the value out"),
        ("config:\n  cht-hosting:cht: {version: 2024-01-01}\n", "Pulumi.bad.yaml: cht-hosting:cht.version: datetime.date(2024, 1, 1) is a YAML date, not text or a number; quote it"),
        ("config:\n  cht-hosting:cht: {budget: {cpu: .inf}}\n", "Pulumi.bad.yaml: cht-hosting:cht.budget.cpu: inf is not a number a setting takes; write a finite number"),
        ("config:\n  cht-hosting:counties: {1: {}}\n", "Pulumi.bad.yaml: cht-hosting:counties: key 1 is not text; quote it"),
    ],
)
def test_stack_file_problems(tmp_path, text, message):
    (tmp_path / "Pulumi.bad.yaml").write_text(text)
    with pytest.raises(stackfile.StackFileError) as error:
        stackfile.load("bad", root=tmp_path)
    assert str(error.value) == message


def test_a_key_without_namespace_is_the_projects(tmp_path):
    (tmp_path / "Pulumi.short.yaml").write_text("config:\n  capacity: {spareAgents: 0}\n")
    assert "cht-hosting:capacity" in stackfile.load("short", root=tmp_path).config


def test_hostile_case_builder_keeps_the_base_valid():
    assert problems() == []
    assert Case("noop", "", {}).render().startswith("config:")
