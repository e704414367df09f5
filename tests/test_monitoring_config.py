"""`cht-hosting:monitoring`: every value to its grammar, routes with their secrets, on by mode."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.validate import required_secrets, validate
from tests.conftest import raw_config

EMAIL = {"to": ["ops@moh.example.org"], "from": "alerts@moh.example.org", "smarthost": "smtp.moh.example.org:587"}


MONITORING_SECRETS = frozenset({"monitoringSmtpPassword", "monitoringWebhookUrl", "monitoringHeartbeatUrl"})


def config_with(stack: str = "national", secrets: tuple[str, ...] = (), **monitoring):
    """The stack's config with `monitoring` replaced, and exactly the monitoring secrets named set."""
    raw, secret_keys = raw_config(stack)
    raw = {k: v for k, v in raw.items() if k not in MONITORING_SECRETS}
    raw["monitoring"] = monitoring
    for key in secrets:
        raw[key] = "[secret]"
    return raw, frozenset((secret_keys - MONITORING_SECRETS) | set(secrets))


def problems(stack: str = "national", secrets: tuple[str, ...] = (), **monitoring) -> list[str]:
    with pytest.raises(ConfigError) as error:
        validate(*config_with(stack, secrets, **monitoring))
    return error.value.problems


def test_on_by_default_where_the_program_builds_the_cluster_and_off_on_an_existing_one():
    assert validate(*config_with("national")).monitoring.enabled is True
    assert validate(*config_with("k3d")).monitoring.enabled is False
    assert validate(*config_with("k3d", enabled=True)).monitoring.enabled is True
    assert validate(*config_with("national", enabled=False)).monitoring.enabled is False


@pytest.mark.parametrize(
    "address",
    ["ops", "ops@", "@moh.example.org", "Ops <ops@moh.example.org>", "ops@moh", "ops@moh.example.org\n", "a b@moh.example.org",
     "ops@moh.example.org,evil@x.org", "ops@-moh.example.org"],
)
def test_email_addresses_are_one_address_each(address):
    (problem,) = problems(email={**EMAIL, "to": [address]})
    assert problem.startswith("cht-hosting:monitoring.email.to[0]: ")
    assert "is not an e-mail address; write one address without a display name" in problem


def test_sender_and_smarthost_to_their_grammar():
    found = problems(email={**EMAIL, "from": "alerts", "smarthost": "smtp.moh.example.org"})
    assert found[0].startswith("cht-hosting:monitoring.email.from: 'alerts' is not an e-mail address")
    assert found[1] == (
        "cht-hosting:monitoring.email.smarthost: 'smtp.moh.example.org' is not an SMTP server; write host:port, "
        "e.g. smtp.moh.example.org:587"
    )
    for bad in ("smtp.moh.example.org:0", "smtp.moh.example.org:99999", "smtp moh:25", "smtp.moh.example.org:25\n"):
        assert "is not an SMTP server" in problems(email={**EMAIL, "smarthost": bad})[0]
    assert validate(*config_with(email={**EMAIL, "smarthost": "10.0.0.5:25"})).monitoring.email.smarthost == "10.0.0.5:25"


def test_a_plain_webhook_url_must_not_carry_credentials():
    for url in ("https://user:pw@hooks.example.org/x", "https://hooks.example.org/x?token=abc", "https://h.example.org/#t"):
        (problem,) = problems(webhook={"url": url})
        assert problem.startswith("cht-hosting:monitoring.webhook.url: the URL carries credentials")
        assert "set the URL as the secret monitoringWebhookUrl" in problem
    for url in ("ftp://hooks.example.org/x", "hooks.example.org/x", "https://"):
        assert "is not an http(s) URL with a host" in problems(webhook={"url": url})[0]


def test_smtp_login_and_its_password_go_together():
    assert problems(email={**EMAIL, "username": "alerts"}) == [
        "cht-hosting:monitoringSmtpPassword: is required because monitoring.email.username is set; set it with "
        "`pulumi config set --secret monitoringSmtpPassword ...`"
    ]
    assert validate(*config_with(secrets=("monitoringSmtpPassword",), email={**EMAIL, "username": "alerts"}))
    assert problems(secrets=("monitoringSmtpPassword",), email=EMAIL)[0].startswith(
        "cht-hosting:monitoringSmtpPassword: is set, but monitoring.email.username is not"
    )
    raw, _ = config_with(email={**EMAIL, "username": "alerts"})
    assert "monitoringSmtpPassword" in required_secrets(raw)


def test_webhook_url_here_or_as_a_secret_not_both_nor_neither():
    assert "keep one" in problems(secrets=("monitoringWebhookUrl",), webhook={"url": "https://hooks.example.org/x"})[0]
    assert problems(webhook={}) == [
        "cht-hosting:monitoring.webhook.url: is required for a webhook; set it here, or as the secret "
        "monitoringWebhookUrl when it carries a token"
    ]
    assert validate(*config_with(secrets=("monitoringWebhookUrl",), webhook={})).monitoring.webhook.url is None


def test_routes_on_a_disabled_stack_are_refused():
    found = problems(enabled=False, email=EMAIL, secrets=("monitoringWebhookUrl",))
    assert found == [
        "cht-hosting:monitoring.email: alerts are routed only when the monitoring stack runs; set "
        "monitoring.enabled: true, or remove it",
        "cht-hosting:monitoringWebhookUrl: is set, but monitoring.enabled is false; set monitoring.enabled: true, "
        "or remove it with `pulumi config rm monitoringWebhookUrl`",
    ]


def test_secrets_must_be_set_as_secrets():
    raw, secret_keys = config_with(webhook={})
    raw["monitoringWebhookUrl"] = "https://hooks.example.org/x?token=abc"
    with pytest.raises(ConfigError) as error:
        validate(raw, secret_keys)
    assert (
        "cht-hosting:monitoringWebhookUrl: is stored in plain text; set it with "
        "`pulumi config set --secret monitoringWebhookUrl ...`"
    ) in error.value.problems


def test_thresholds_sizes_and_versions_are_bounded():
    found = problems(
        alerts={"volumeUsedPercent": 100, "certificateRenewalDays": 0, "upgradeHeadroomFactor": 0.5},
        prometheus={"storageGb": 1, "cpu": 0},
        stackChartVersion="latest",
        scrapeIntervalSeconds=5,
        chartRepository="oci:/x y",
    )
    assert found[0].startswith("cht-hosting:monitoring.chartRepository: 'oci:/x y' is not a")
    assert found[1:] == [
        "cht-hosting:monitoring.stackChartVersion: 'latest' is not a chart version; write it as X.Y.Z, e.g. 88.5.3",
        "cht-hosting:monitoring.scrapeIntervalSeconds: must be at least 15, got 5",
        "cht-hosting:monitoring.prometheus.cpu: must be a positive number, got 0",
        "cht-hosting:monitoring.prometheus.storageGb: must be at least 5, got 1",
        "cht-hosting:monitoring.alerts.volumeUsedPercent: must be at most 99, got 100",
        "cht-hosting:monitoring.alerts.upgradeHeadroomFactor: must be at least 1.0, got 0.5",
        "cht-hosting:monitoring.alerts.certificateRenewalDays: must be at least 1, got 0",
    ]
    assert "unknown key" in problems(alerts={"volumeUsedPct": 80})[0]


def test_a_county_cannot_take_the_monitoring_namespace():
    raw, secret_keys = raw_config("national")
    raw = dict(raw, counties={**raw["counties"], "monitoring": {}})
    with pytest.raises(ConfigError) as error:
        validate(raw, secret_keys)
    assert error.value.problems == [
        "cht-hosting:counties.monitoring: 'monitoring' is a namespace the cluster itself uses; choose another county name"
    ]
