"""A property of every stack file: whatever validates plans and renders every file of the review folder without an
exception; whatever is refused exits 2 with every problem naming its key, before anything registers, without a
traceback. Hypothesis edits the guarded test stack (tests/stacks/Pulumi.guarded.yaml) at the keys below with
good, careless and hostile values (other scripts' digits, control characters, template and shell syntax, huge
numbers).

    CHT_PROPERTY_EXAMPLES=500 venv/bin/python -m pytest tests/test_config_property.py   # a longer hunt
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offline import plan
from tests.hostile import Case

EXAMPLES = int(os.environ.get("CHT_PROPERTY_EXAMPLES", "10"))

# Text a careless or hostile operator might type: any character but surrogates, newlines and controls included.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
TRICKY = st.sampled_from(
    ["", " ", "\n", "٣", "１", "{{ .Value }}", "$(reboot)", "`id`", "a;b", "a\x00b", "x" * 300, "-1", "0", "1e999", "☃"]
)
TEXT = st.one_of(ANY_TEXT, TRICKY)
DIGITS = st.sampled_from(["0", "5", "23", "31", "59", "٣", "１", "99", "*", "*/15", "1-5", "MON", "?", "2", "30"])
CRON = st.one_of(st.lists(DIGITS, min_size=5, max_size=5).map(" ".join), TEXT, st.sampled_from(["@daily", "@hourly"]))
NUMBER = st.one_of(
    st.integers(-2, 70000), st.integers(10**6, 10**20), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
)
LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,12}[a-z0-9]", fullmatch=True)
HOST = st.one_of(LABEL.map(lambda s: f"{s}.moh.example.org"), TEXT)
URL = st.one_of(HOST.map(lambda h: f"https://{h}/hook"), TEXT, st.sampled_from(["https://xn--80ak6aa92e.com/", "http://10.0.0.1:0/"]))
EMAIL = st.one_of(LABEL.map(lambda s: f"{s}@moh.example.org"), TEXT, st.just("{{ .GroupLabels }}@moh.example.org"))
CIDR = st.one_of(st.sampled_from(["10.43.0.0/16", "10.43.0.0/30", "10.20.0.0/24", "0.0.0.0/0", "10.42.0.0/16"]), TEXT)
NAMESPACE = st.one_of(LABEL, st.sampled_from(["kisumu", "kube-system", "monitoring", "velero", "restore-drill-scratch", "default"]))

EDITS = {
    "cht.version": st.one_of(st.sampled_from(["4.22.0", "5.0.0", "4.5.0", "٤.22.0"]), TEXT, NUMBER),
    "cht.couchdbNodes": st.one_of(st.sampled_from([1, 3]), NUMBER),
    "cht.couchdbStorageGb": NUMBER,
    "cht.budget": st.fixed_dictionaries({"cpu": NUMBER, "memoryGb": NUMBER}),
    "cht.hostTemplate": st.one_of(LABEL.map(lambda s: "{county}." + s + ".example.org"), TEXT),
    "cht.couchdbUser": st.one_of(LABEL, TEXT),
    "cht.logLevel": st.one_of(st.sampled_from(["debug", "info"]), TEXT),
    "counties": st.dictionaries(st.one_of(LABEL, NAMESPACE, TEXT), st.just({}), min_size=1, max_size=3),
    "ingress.httpsNodePort": NUMBER,
    "ingress.edgeProxies": st.lists(st.one_of(CIDR, st.just("192.0.2.10")), max_size=2),
    "k3s.serviceCidr": CIDR,
    "k3s.installScriptUrl": URL,
    "k3s.drainTimeoutMinutes": NUMBER,
    "network.ntp": st.lists(HOST, max_size=2),
    "ssh.user": st.one_of(LABEL, st.just("root"), TEXT),
    "agents.cpus": NUMBER,
    "capacity.spareAgents": NUMBER,
    "backup": st.fixed_dictionaries(
        {"s3": st.fixed_dictionaries({"endpoint": st.one_of(URL, st.just("https://s3.moh.example.org:9000")), "bucket": st.one_of(LABEL, TEXT)})},
        optional={
            "counties": st.fixed_dictionaries({}, optional={"schedule": CRON, "prefix": TEXT, "retentionDays": NUMBER}),
            "velero": st.fixed_dictionaries({}, optional={"namespace": NAMESPACE}),
            "drill": st.fixed_dictionaries({}, optional={"schedule": CRON, "storageClass": st.one_of(LABEL, st.just("vmware-sc"))}),
        },
    ),
    "monitoring": st.fixed_dictionaries(
        {},
        optional={
            "email": st.fixed_dictionaries(
                {"to": st.lists(EMAIL, min_size=1, max_size=2), "from": EMAIL, "smarthost": st.one_of(HOST.map(lambda h: f"{h}:587"), TEXT)}
            ),
            "webhook": st.fixed_dictionaries({"url": URL}),
            "scrapeIntervalSeconds": NUMBER,
        },
    ),
}
SECRETS = {"backup": ("backupAccessKeyId", "backupSecretAccessKey", "etcdBackupAccessKeyId", "etcdBackupSecretAccessKey")}
PROBLEM = re.compile(r"  - (cht-hosting:|[a-z-]+:[A-Za-z])")


@st.composite
def stack_edits(draw) -> dict:
    keys = draw(st.sets(st.sampled_from(sorted(EDITS)), min_size=1, max_size=4))
    edits = {key: draw(EDITS[key]) for key in sorted(keys)}
    for key, secrets in SECRETS.items():
        if key in edits:
            edits.update({secret: {"secure": "v1:x"} for secret in secrets})
    return edits


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(edits=stack_edits())
def test_a_stack_either_plans_every_file_or_is_refused_with_its_keys(edits, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("property")
    case = Case("property", "", edits)
    (folder / "Pulumi.property.yaml").write_text(case.render())
    code = plan.main(["property", "--stack-dir", str(folder), "--out", str(folder / "review")])
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert "Traceback" not in output and "registered)" not in output, output
    if code == 0:
        assert (folder / "review" / "plan.txt").is_file(), output
        return
    assert code == 2, output
    if captured.err.startswith("error: Pulumi.property.yaml"):
        return  # the stack file itself (a key or value YAML/JSON cannot carry), named with its key
    if "error: the capacity report" in captured.err:
        return
    lines = [line for line in captured.err.splitlines() if line.startswith("  - ")]
    assert lines and all(PROBLEM.match(line) for line in lines), output
