"""The nginx configs the stack exports parse in a real nginx (`nginx -t`).

CI installs nginx (.ci/run); on a machine without it these tests are skipped, unless CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.edge.render import edge_nginx_config
from components.k3s.render import nginx_stream_config

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
pytestmark = pytest.mark.skipif(
    not (NGINX and STREAM_MODULE.exists()) and not os.environ.get("CI"),
    reason="nginx with the stream module is not installed (CI installs it)",
)


def nginx_accepts(tmp_path: Path, top_level: str, inside_http: str = "") -> subprocess.CompletedProcess:
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"load_module {STREAM_MODULE};\n"
        f"pid {tmp_path}/nginx.pid;\n"
        "error_log stderr;\n"
        "events {}\n"
        f"http {{\n{inside_http}\n}}\n"
        f"{top_level}\n"
    )
    return subprocess.run([NGINX, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)


def test_edge_config_parses(tmp_path):
    hosts = {"nairobi": "nairobi.echis.moh.example.org", "homa-bay": "homa-bay.echis.moh.example.org"}
    text = edge_nginx_config(hosts, ["10.20.0.21", "10.20.0.22"], https_node_port=30443, stack="prod", timeout_seconds=3600)
    stream, _, http = text.partition("# 2) Inside the `http` block")
    redirect = "\n".join(line[2:] for line in http.splitlines() if line.startswith("# ") and not line.startswith("# 2"))
    result = nginx_accepts(tmp_path, stream, redirect)
    assert result.returncode == 0, result.stderr


def test_edge_config_with_a_broken_route_is_refused(tmp_path):
    text = edge_nginx_config({"x": "x.example.org"}, ["10.0.0.1"], https_node_port=30443, stack="s", timeout_seconds=1)
    result = nginx_accepts(tmp_path, text.replace("ssl_preread on;", "ssl_preread maybe;"))
    assert result.returncode != 0  # proves nginx really checks what we hand it


def test_api_load_balancer_config_parses(tmp_path):
    result = nginx_accepts(tmp_path, nginx_stream_config(["10.20.0.11", "10.20.0.12", "10.20.0.13"], stack="prod"))
    assert result.returncode == 0, result.stderr
