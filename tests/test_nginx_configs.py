"""The nginx configs the stack exports parse in a real nginx (`nginx -t`).

CI installs nginx (.ci/run); elsewhere, without it, these tests are skipped (tests/tools.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from components.edge.render import edge_nginx_config
from components.k3s.files import nginx_stream_config
from tests import tools


@pytest.fixture(scope="module")
def nginx() -> tuple[str, str]:
    """nginx and the `load_module` line its stream module needs ("" when the module is built in)."""
    binary = tools.need("nginx")
    build = subprocess.run([binary, "-V"], capture_output=True, text=True).stderr
    if re.search(r"--with-stream(\s|$)", build):
        return binary, ""
    modules = re.search(r"--modules-path=(\S+)", build)
    module = Path(modules.group(1) if modules else "modules") / "ngx_stream_module.so"
    if "--with-stream=dynamic" not in build or not module.exists():
        tools.unavailable(f"nginx's stream module is not installed ({tools.INSTALL['nginx']})")
    return binary, f"load_module {module};\n"


def nginx_accepts(nginx, tmp_path: Path, top_level: str, inside_http: str = "") -> subprocess.CompletedProcess:
    binary, load_stream = nginx
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"{load_stream}"
        f"pid {tmp_path}/nginx.pid;\n"
        "error_log stderr;\n"
        "events {}\n"
        f"http {{\n{inside_http}\n}}\n"
        f"{top_level}\n"
    )
    return subprocess.run([binary, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)


@pytest.mark.parametrize("proxy_protocol", [True, False])
def test_edge_config_parses(nginx, tmp_path, proxy_protocol):
    hosts = {"nairobi": "nairobi.echis.moh.example.org", "homa-bay": "homa-bay.echis.moh.example.org"}
    text = edge_nginx_config(
        hosts, ["10.20.0.21", "10.20.0.22"], https_node_port=30443, stack="prod", timeout_seconds=3600,
        proxy_protocol=proxy_protocol,
    )
    assert ("proxy_protocol on;" in text) is proxy_protocol
    stream, _, http = text.partition("# 2) Inside the `http` block")
    redirect = "\n".join(line[2:] for line in http.splitlines() if line.startswith("# ") and not line.startswith("# 2"))
    result = nginx_accepts(nginx, tmp_path, stream, redirect)
    assert result.returncode == 0, result.stderr


def test_edge_config_with_a_broken_route_is_refused(nginx, tmp_path):
    text = edge_nginx_config({"x": "x.example.org"}, ["10.0.0.1"], https_node_port=30443, stack="s", timeout_seconds=1)
    result = nginx_accepts(nginx, tmp_path, text.replace("ssl_preread on;", "ssl_preread maybe;"))
    assert result.returncode != 0  # proves nginx really checks what we hand it


def test_api_load_balancer_config_parses(nginx, tmp_path):
    result = nginx_accepts(nginx, tmp_path, nginx_stream_config(["10.20.0.11", "10.20.0.12", "10.20.0.13"], stack="prod"))
    assert result.returncode == 0, result.stderr


def test_the_stacks_exported_edge_config_parses(nginx, tmp_path):
    """What a stack exports (here the test stack with edge proxies), not only what the renderer can make."""
    from offline import plan

    evaluation, _ = plan.run("cht5", stack_dir=Path(__file__).parent / "stacks")
    text = evaluation.outputs["edgeNginxConfig"]
    assert "proxy_protocol on;" in text
    stream, _, http = text.partition("# 2) Inside the `http` block")
    redirect = "\n".join(line[2:] for line in http.splitlines() if line.startswith("# ") and not line.startswith("# 2"))
    result = nginx_accepts(nginx, tmp_path, stream, redirect)
    assert result.returncode == 0, result.stderr
