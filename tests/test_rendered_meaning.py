"""Generated hostile values for every rendered field: whatever validation accepts leaves the meaning of the
rendered file unchanged (parsed back: same keys and structure, the value intact as data), and a shell script
receives a value as data even when validation is bypassed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from components.edge import render as edge_render
from components.k3s import files, scripts
from components.storage import render as storage_render
from components.vsphere import cloud_init
from config import grammar
from tests.hostile import KEY
from tests.tools import need

# Fragments that change a file's meaning somewhere: line breaks, quotes, shell, YAML, INI, nginx, chrony.
HOSTILE = [
    "\n", "\r", "\t", " ", "\"", "'", "`", "$(", "${x}", ";", "&", "|", "\\", "#", ":", ": ", "{", "}", "[", "]",
    "\x00", "\x1b", "..", "/", "*", "!", "%0a", "\u2028", "\u00e9", "insecureFlag: true", "allow all", "return 200;",
]
fragment = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8))


def hostile_around(valid: list[str]):
    """A valid value with hostile fragments before, inside or after it, or arbitrary text."""
    return st.one_of(
        st.text(max_size=40),
        st.tuples(st.sampled_from(valid), fragment, st.integers(0, 64)).map(
            lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
        ),
        st.tuples(fragment, st.sampled_from(valid), fragment).map("".join),
    )


def mostly_valid(valid: list[str]):
    """Valid values half the time (so generated lists and tuples get through validation), else hostile."""
    return st.one_of(st.sampled_from(valid), hostile_around(valid))


def accepted(check, value, *args, **kwargs) -> bool:
    try:
        check(value, *args, **kwargs)
    except ValueError:
        return False
    return True


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
HOSTS = ["kisumu.echis.moh.example.org", "ntp.moh.example.org", "a.b", "10.20.0.4"]
URLS = ["https://get.k3s.io", "https://mirror.moh.example.org/k3s/install.sh?x=1#top", "http://10.0.0.1:8080/a"]


# --- acceptance means no character with a meaning in the target ----------------------------------------------


@PROPERTY
@given(hostile_around(HOSTS))
def test_an_accepted_host_name_is_one_plain_token(value):
    assume(accepted(grammar.host, value))
    assert re.fullmatch(r"[A-Za-z0-9.-]+", value) and not value.endswith(".")


@PROPERTY
@given(hostile_around(URLS))
def test_an_accepted_url_carries_no_shell_or_yaml(value):
    assume(accepted(grammar.url, value))
    assert not set(value) & set(" \t\r\n\"'`$;()\\|<>*!{}[]") and value.startswith(("https://", "http://"))


@PROPERTY
@given(hostile_around(["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"]))
def test_an_accepted_thumbprint_is_hex_pairs_only(value):
    assume(accepted(grammar.thumbprint, value))
    assert re.fullmatch(r"[0-9A-Fa-f:]{59}", value)


@PROPERTY
@given(hostile_around(["/srv/cht/couchdb", "/data/compose/couchdb1", "/var/lib/rancher/x"]))
def test_an_accepted_host_path_is_normalised_and_outside_the_system(value):
    assume(accepted(grammar.host_path, value))
    assert os.path.normpath(value) == value and ".." not in value.split("/")
    assert not any(value == d or value.startswith(d + "/") for d in grammar.PROTECTED_PATHS)


@PROPERTY
@given(hostile_around(["DC1", "CHT Cluster", "vsanDatastore", "VLAN120-CHT"]))
def test_an_accepted_vcenter_name_has_no_quote_or_line_break(value):
    assume(accepted(grammar.inventory_name, value))
    assert not set(value) & set("\"'\\\n\r\t#:`$")


@PROPERTY
@given(hostile_around(["public.ecr.aws/medic", "registry.moh.example.org:5000/medic"]))
def test_an_accepted_image_repository_is_one_token(value):
    assume(accepted(grammar.image_repository, value))
    assert re.fullmatch(r"[a-z0-9._:/A-Z-]+", value)


# --- rendered files parsed back ------------------------------------------------------------------------------------


def _nginx_tokens(text: str) -> list[str]:
    """nginx's lexical structure: words, `;`, `{`, `}` (comments dropped)."""
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(r"[;{}]|[^\s;{}]+", text)


@PROPERTY
@given(st.lists(mostly_valid(HOSTS[:3]), min_size=1, max_size=4))
def test_edge_nginx_keeps_its_structure_for_any_accepted_host(hosts):
    hosts = list(dict.fromkeys(h for h in hosts if accepted(grammar.host_name, h)))
    assume(hosts)
    counties = {f"county-{i}": h for i, h in enumerate(hosts)}
    config = edge_render.edge_nginx_config(
        counties, ["10.20.0.21"], https_node_port=30443, stack="prod", timeout_seconds=3600
    )
    baseline = edge_render.edge_nginx_config(
        {c: f"h{i}.example.org" for i, c in enumerate(counties)},
        ["10.20.0.21"], https_node_port=30443, stack="prod", timeout_seconds=3600,
    )
    swap = {f"h{i}.example.org": h for i, h in enumerate(hosts)}
    assert _nginx_tokens(config) == [swap.get(t, t) for t in _nginx_tokens(baseline)]


def test_edge_nginx_with_hostile_but_accepted_hosts_passes_nginx(tmp_path):
    nginx = need("nginx")
    hosts = {"a": "a-1.b-2.example.org", "b": "9x.example.org", "c": "xn--bcher-kva.example"}
    config = edge_render.edge_nginx_config(hosts, ["10.0.0.1"], https_node_port=30443, stack="prod", timeout_seconds=60)
    stream = config.split("# 2)")[0]
    conf = tmp_path / "nginx.conf"
    modules = "/usr/lib/nginx/modules/ngx_stream_module.so"
    load = f"load_module {modules};\n" if Path(modules).exists() else ""
    conf.write_text(f"{load}pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n{stream}")
    done = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True)
    if "unknown directive \"stream\"" in done.stderr:
        pytest.skip("nginx has no stream module here")
    assert done.returncode == 0, done.stderr


KEYS = [KEY, KEY.rsplit(" ", 1)[0], KEY.replace("ops@", "admin@")]


@PROPERTY
@given(
    st.lists(mostly_valid(KEYS), min_size=1, max_size=4),
    st.lists(mostly_valid(HOSTS), max_size=4),
)
def test_cloud_init_userdata_keeps_its_keys_and_each_value_intact(keys, ntp):
    keys = [k for k in keys if accepted(grammar.ssh_public_key, k)]  # what validation lets through
    ntp = [n for n in ntp if accepted(grammar.host, n)]
    assume(keys)
    host_key = cloud_init.HostKey("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n", KEY)
    document = yaml.safe_load(cloud_init.userdata("agent-1", "chtadmin", keys, ntp, host_key))
    baseline = yaml.safe_load(cloud_init.userdata("agent-1", "chtadmin", [KEY], ["ntp.example.org"], host_key))
    assert document.keys() == baseline.keys() and document["users"][0].keys() == baseline["users"][0].keys()
    assert document["users"][0]["ssh_authorized_keys"] == keys
    # authorized_keys gets one line per key, and chrony one `server <name> iburst` line per server.
    assert "\n".join(keys).count("\n") == len(keys) - 1
    assert document["ntp"].get("servers", []) == ntp
    assert all(len(f"server {n} iburst".split()) == 3 for n in ntp)


@PROPERTY
@given(
    mostly_valid(HOSTS),
    mostly_valid(["DC1", "MOH DC (1)"]),
    mostly_valid(["AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01"]),
)
def test_cpi_vsphere_conf_keeps_its_keys_for_accepted_values(server, datacenter, thumbprint):
    assume(accepted(grammar.host, server) and accepted(grammar.inventory_name, datacenter))
    assume(accepted(grammar.thumbprint, thumbprint))
    access = storage_render.VcenterAccess(server=server, datacenter=datacenter, user="u@vsphere.local", thumbprint=thumbprint)
    document = yaml.safe_load(storage_render.cpi_conf(access))
    assert set(document) == {"global", "vcenter"}
    assert set(document["global"]) == {"port", "thumbprint", "secretName", "secretNamespace"}
    assert "insecureFlag" not in document["global"] and document["global"]["thumbprint"] == thumbprint
    assert document["vcenter"] == {server: {"server": server, "datacenters": [datacenter]}}


def _gcfg_values(text: str) -> list[tuple[str, str]]:
    """(key, value) per line of a gcfg file whose values are all double-quoted, escapes decoded."""
    pairs = []
    for line in text.split("\n"):
        match = re.fullmatch(r'([a-z-]+) = "((?:[^"\\]|\\.)*)"', line)
        if match:
            value = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), match.group(2))
            pairs.append((match.group(1), value))
    return pairs


@PROPERTY
@given(st.text(max_size=40), st.text(max_size=40))
def test_csi_conf_quotes_any_value_into_one_line(datacenter, user):
    """Defence in depth: even a value validation would refuse stays one quoted value of its own key."""
    assume("\r" not in datacenter + user and "\x00" not in datacenter + user)
    access = storage_render.VcenterAccess(server="vcenter.example.org", datacenter=datacenter, user=user)
    text = storage_render.csi_conf(access, "pw", "cluster-1")
    baseline = storage_render.csi_conf(
        storage_render.VcenterAccess(server="vcenter.example.org", datacenter="dc", user="u"), "pw", "cluster-1"
    )
    assert len(text.split("\n")) == len(baseline.split("\n"))  # gcfg ends a line at \n only
    values = dict(_gcfg_values(text))
    assert [k for k, _ in _gcfg_values(text)] == [k for k, _ in _gcfg_values(baseline)]
    assert (values["datacenters"], values["user"]) == (datacenter.replace("\t", "\t"), user)


@PROPERTY
@given(
    st.dictionaries(
        mostly_valid(["docker.io", "registry.k8s.io:5000", "*"]),
        st.lists(mostly_valid(URLS), min_size=1, max_size=3),
        min_size=1,
        max_size=3,
    )
)
def test_registries_yaml_round_trips_accepted_mirrors(mirrors):
    mirrors = {
        k: [u for u in urls if accepted(grammar.url, u)]
        for k, urls in mirrors.items()
        if k == "*" or accepted(grammar.host_port, k)
    }
    mirrors = {k: urls for k, urls in mirrors.items() if urls}
    assume(mirrors)
    parsed = yaml.safe_load(files.registries_config(mirrors))
    assert parsed == {"mirrors": {k: {"endpoint": v} for k, v in mirrors.items()}}


# --- shell scripts: the value arrives intact, as data -------------------------------------------------------------


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.sampled_from(HOSTILE), hostile_around(URLS), st.text(max_size=30)))
def test_install_script_gets_any_url_as_data(tmp_path_factory, url):
    """Even a URL validation would refuse reaches curl as one argument and the message verbatim; nothing runs."""
    assume("\x00" not in url)
    bash = need("bash")
    work = tmp_path_factory.mktemp("install")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "curl", 'for a in "$@"; do last="$a"; done; printf %s "$last" > "$STUB_OUT/curl-url"; exit 22')
    _stub(bin_dir, "systemctl", "exit 1")
    (work / "out").mkdir()
    script = scripts.install_script(
        name="agent-1", role="agent", version="v1.35.2+k3s1", install_script_url=url, join_url=None,
        root=str(work / "root"),
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_OUT": str(work / "out"), "HOME": str(work)}
    done = subprocess.run([bash, "-c", script], env=env, capture_output=True, cwd=work, timeout=30)
    assert done.returncode == 1
    assert (work / "out" / "curl-url").read_bytes().decode() == url  # bytes: no newline translation
    assert f"could not download the k3s install script from {url}; " in done.stderr.decode()
    assert sorted(p.name for p in (work / "out").iterdir()) == ["curl-url"]
