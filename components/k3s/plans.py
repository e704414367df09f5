"""Pure renderer of the system-upgrade-controller Plans that upgrade k3s in place: the servers one at a time,
then the agents. K3sUpgrades (upgrades.py) registers them; bumping `k3s.version` changes these and nothing else.
"""

from __future__ import annotations

from config.names import CONTROL_PLANE_LABEL

SERVER_PLAN = "k3s-server"
AGENT_PLAN = "k3s-agent"


def upgrade_plans(version: str) -> tuple[dict, dict]:
    """The server Plan (one server at a time, cordoned) and the agent Plan that waits for it."""
    common = {
        "concurrency": 1,
        "cordon": True,
        "version": version,
        "serviceAccountName": "system-upgrade",
        "upgrade": {"image": "rancher/k3s-upgrade"},
    }
    server = {
        **common,
        "nodeSelector": {
            "matchExpressions": [{"key": CONTROL_PLANE_LABEL, "operator": "In", "values": ["true"]}]
        },
        "tolerations": [{"operator": "Exists"}],  # our CriticalAddonsOnly taint, and any other on a server
    }
    agent = {
        **common,
        "nodeSelector": {
            "matchExpressions": [{"key": CONTROL_PLANE_LABEL, "operator": "DoesNotExist"}]
        },
        # `prepare` blocks until every node of the server Plan runs `version`: servers before agents.
        "prepare": {"image": "rancher/k3s-upgrade", "args": ["prepare", SERVER_PLAN]},
    }
    return server, agent

