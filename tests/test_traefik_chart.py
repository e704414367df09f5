"""traefik values for the chart the pinned k3s bundles: the Service k3s deploys must be a NodePort on every chart.

Upstream (traefik/traefik-helm-chart), followed by the stand-in `service_spec` below:
- `traefik/templates/_service.tpl` @ v39.0.7, `define "traefik.service-spec"`: `type: {{ default "LoadBalancer"
  .service.type }}`, then `{{ with .service.spec }}{{ toYaml . }}` appended to the same mapping.
- the same template @ v40.0.0 and @ v41.3.0: only `{{ with .service.spec }}{{ toYaml . }}`; `service.type` is
  no longer read (values.schema.json @ v40.0.0 lists no `service.type`; `service` has no additionalProperties
  rule, so the key is silently ignored).
- `traefik/values.yaml` defaults: @ v39.0.7 `service.type: LoadBalancer`, `service.spec: {}`; @ v40.0.0 and
  @ v41.3.0 `service.spec.type: LoadBalancer`. Helm merges the user's values over these maps.
Which chart a k3s release bundles: config/compatibility.yaml `traefikChart` (k3s release notes).
"""

from __future__ import annotations

import pytest
import yaml

from components.edge.render import traefik_values
from config import compatibility
from config.validate import validate
from offline import plan
from tests.conftest import STACKS, raw_config
from tests.test_config_validation import problems_with

CHART_DEFAULTS = {
    "v39.0.7": {"type": "LoadBalancer", "spec": {}},
    "v40.0.0": {"spec": {"type": "LoadBalancer"}},
    "v41.3.0": {"spec": {"type": "LoadBalancer"}},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class _Unique(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (as the API server's decoder does)."""


def _no_duplicates(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"duplicate key(s) {duplicated} in the rendered Service spec")
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_Unique.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def service_spec(chart: str, values_content: str) -> dict:
    """The Service spec (without selector and ports) chart `chart` renders from k3s's values plus ours."""
    service = _merge(CHART_DEFAULTS[chart], (yaml.safe_load(values_content) or {}).get("service", {}))
    lines = []
    if chart.startswith("v39."):
        lines.append(f"type: {service.get('type') or 'LoadBalancer'}")
    if service.get("spec"):
        lines.append(yaml.safe_dump(service["spec"], sort_keys=True).rstrip("\n"))
    return yaml.load("\n".join(lines), Loader=_Unique)


def values(chart_v40: bool) -> str:
    return traefik_values(https_node_port=30443, http_node_port=30080, timeout_seconds=3600, chart_v40=chart_v40)


@pytest.mark.parametrize("chart", sorted(CHART_DEFAULTS))
def test_each_chart_renders_a_node_port_service_that_keeps_the_client_address(chart):
    spec = service_spec(chart, values(chart_v40=not chart.startswith("v39.")))
    assert spec == {"type": "NodePort", "externalTrafficPolicy": "Local"}


def test_the_other_generations_values_would_be_wrong():
    # v40+ ignores service.type: the Service stays a LoadBalancer that nothing serves (servicelb is disabled).
    assert service_spec("v40.0.0", values(chart_v40=False))["type"] == "LoadBalancer"
    # v39 with the type in service.spec renders `type:` twice.
    with pytest.raises(ValueError, match="duplicate"):
        service_spec("v39.0.7", values(chart_v40=True))


@pytest.mark.parametrize(
    ("k3s", "v40"),
    [
        ("v1.35.8+k3s1", True),  # release notes: "This release upgrades Traefik chart to v40.x"
        ("v1.35.7+k3s1", True),
        ("v1.35.6+k3s1", False),  # June 2026: Traefik v3.7.4 on chart v39
        ("v1.35.2+k3s1", False),
        ("v1.36.3+k3s1", True),
        ("v1.36.1+k3s1", False),
        ("v1.33.13+k3s2", True),
        ("v1.33.13+k3s1", False),
        ("v1.34.9+k3s1", False),
        ("v1.34.10+k3s1", None),  # not recorded: refused by validation
        ("v1.37.0+k3s1", True),
        ("v1.38.2+k3s1", True),  # newer lines keep v40 or later
        ("v1.31.9+k3s1", False),
    ],
)
def test_the_table_places_each_k3s_release(k3s, v40):
    assert compatibility.traefik_chart_v40(k3s) is v40


def test_a_k3s_release_the_table_cannot_place_is_refused_with_the_key():
    problems = problems_with(("k3s.version", "v1.34.10+k3s1"), ("cpi.version", "1.34.0"), ("csi.version", "v3.7.3"))
    assert [p for p in problems if p.startswith("cht-hosting:k3s.version")] == [
        "cht-hosting:k3s.version: which traefik chart k3s v1.34.10+k3s1 bundles is not recorded "
        "(config/compatibility.yaml traefikChart; chart v40 moved the Service type to service.spec.type); pin a "
        "release the table covers, or add the line's first release bundling chart v40 there with its source"
    ]


@pytest.mark.parametrize(("stack", "chart"), [("national", "v40.0.0"), ("guarded", "v39.0.7")])
def test_the_stack_renders_values_for_the_chart_its_k3s_bundles(stack, chart):
    """national pins k3s v1.35.8+k3s1 (chart v40.x), guarded v1.35.2+k3s1 (chart v39): each gets a NodePort."""
    version = validate(*raw_config(stack)).k3s.version
    assert compatibility.traefik_chart_v40(version) is (chart != "v39.0.7")
    evaluation, _ = plan.run(stack, stack_dir=STACKS)
    content = evaluation.named("ingress-traefik").inputs["spec"]["valuesContent"]
    assert service_spec(chart, content)["type"] == "NodePort"
