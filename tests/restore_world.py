"""A stand-in world for the control-plane restore scripts: servers' roots, their k3s, systemd and the cluster.

Every server VM is a directory (its root, as the scripts are rendered for it); the cluster's state (etcd
clusters, their members, Nodes and node-password secrets, the bucket's snapshots) is one JSON file. The
tools the scripts call are this file run as a program (`python restore_world.py <tool> ...`): `k3s` (server,
kubectl), `k3s-killall.sh`, `systemctl`, `curl` and `cloud-init`; coreutils are the real ones. Each tool logs
its argv, so a test can prove a secret never reaches a command line.

What the stand-ins enforce, and where upstream does it. k3s was read in the newest versions the source index
stores, NOT at the pinned v1.36.1+k3s1 tag (the repository is too large to fetch whole):
- k3s pkg/cli/server/server.go (index commit 238dc2086e94a06b2e625bd46473ec24ba67eb86): inside
  `if cfg.ClusterReset`, a server URL (`--server`, config `server:`, K3S_URL) -> "cannot perform
  cluster-reset while server URL is set - remove server from configuration before resetting" (PR #8385);
  with `--cluster-reset-restore-path` and no `--token`/K3S_TOKEN (cfg.Token; `token-file` is read only into
  ControlConfig.Token), `<data-dir>/server/token` must exist -> "... does not exist, please pass --token to
  complete the restoration"; `--cluster-reset-restore-path` without `--cluster-reset` is refused.
- k3s pkg/cli/cmds/server.go (index): the `token` flag's EnvVar is K3S_TOKEN.
- k3s pkg/configfilearg/parser.go and defaultparser.go (index commits f646604010af, f5e626d270758): the
  config file is K3S_CONFIG_FILE, else `--config`, else /etc/rancher/k3s/config.yaml; `<file>.d/*.yaml|*.yml`
  are read after it; command-line flags come after the file's and win.
- k3s pkg/cluster/managed.go (index): a reset without a restore path is refused while
  `<data-dir>/server/db/reset-flag` exists; the first normal start after a reset removes the flag and
  deletes this node's node-password secret.
- k3s docs/cli/etcd-snapshot.md (k3s-io/docs @001bff5b): a restore needs the token the snapshot was taken
  with (it decrypts the bootstrap data); S3 snapshots are named by file name with the S3 settings given.
- k3s pkg/etcd/member_controller.go (index @bad22133): deleting a Node with the etcd role removes its etcd
  member (RemovePeer, self-removal allowed).
- k3s pkg/nodepassword/controller.go and validate.go (index @67810cf1, @9891fcf8): the node-password secret
  is owned by its Node (the garbage collector deletes it with the Node); a node whose password does not
  match an existing secret is refused ("Node password rejected").
- k3s install.sh (index): the installer writes the unit, `k3s-killall.sh` (stops k3s and every container it
  started) and enables/starts the service unless INSTALL_K3S_SKIP_ENABLE/SKIP_START.
- `k3s secrets-encrypt` (pkg/server/handlers/secrets-encrypt.go, index commit eb2792910d12; k3s PR #13370,
  merged 2025-12-19 before v1.36.0, which lets `enable` place an encryption config with the identity provider
  on a cluster started without `--secrets-encryption`): a server loads the encryption config only when it
  starts with `secrets-encryption`; `rotate-keys` needs the stage `start` or `reencrypt_finished` and the same
  config loaded on every server ("hash does not match"); `reencrypt` needs the stage `rotate`; `status` says
  Enabled only with AES-CBC first. Turning the flag on by itself on an existing cluster is what the docs call
  unsupported: recorded as such.
- systemd: starting or enabling a unit that does not exist fails ("Unit k3s.service not found.", exit 5).
- etcd: a cluster serves only with a quorum of its members running; a member removed from its cluster cannot
  start on its old data.
The world also records a split brain: two servers serving different clusters at the same time.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import yaml

HERE = Path(__file__).resolve()
REAL = ("cat", "mktemp", "chmod", "cmp", "mv", "rm", "mkdir", "dirname", "sed", "tr", "grep", "sort", "sh", "date", "cp", "head", "timeout")
TOOLS = ("curl", "systemctl", "cloud-init", "sleep")
RESET_DONE = "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now."


# --- the world, as the tests see it ------------------------------------------------------------------------


class World:
    def __init__(self, base: Path, servers: dict[str, str], agents: dict[str, str], vip: str, bash: str):
        self.base = base
        self.servers, self.agents, self.vip, self.bash = servers, agents, vip, bash
        self.bin = base / "bin"
        self.bin.mkdir(parents=True)
        self.state_file = base / "world.json"
        self.log = base / "argv.log"
        self.save(
            {"servers": servers, "vip": vip, "clusters": {}, "running": {}, "bucket": {}, "events": [], "resets": 0}
        )
        for tool in TOOLS:
            self._tool(self.bin / tool, tool)
        for name in (*REAL, "bash"):
            real = shutil.which(name)
            assert real, f"{name} is needed"
            (self.bin / name).write_text(f'#!{bash}\nprintf "%s\\n" "{name} $*" >> "$WORLD_LOG"\nexec {real} "$@"\n')
            (self.bin / name).chmod(0o755)

    def _tool(self, path: Path, tool: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'#!{self.bash}\nexec {sys.executable} {HERE} {tool} "$@"\n')
        path.chmod(0o755)

    # state
    def load(self) -> dict:
        return json.loads(self.state_file.read_text())

    def save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=1, sort_keys=True))

    def root(self, name: str) -> Path:
        return self.base / "vms" / name

    def argv(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def run(self, on: str, script: str, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
        """Run `script` (rendered for `on`'s root) as root on server VM `on`, with `args`."""
        environment = {
            "PATH": str(self.bin),
            "WORLD": str(self.state_file),
            "WORLD_SELF": on,
            "WORLD_ROOT": str(self.root(on)),
            "WORLD_LOG": str(self.log),
            **env,
        }
        with open(self.log, "a") as log:
            log.write(f"--- {on}: {script.splitlines()[3] if script.count(chr(10)) > 3 else ''}\n")
        return subprocess.run(
            [self.bash, "-c", script, "script", *args], input=stdin, capture_output=True, text=True,
            env=environment, timeout=60,
        )

    # building blocks
    def install_k3s_files(self, name: str, enabled: bool = True) -> None:
        root = self.root(name)
        for rel, tool in (("usr/local/bin/k3s", "k3s"), ("usr/local/bin/k3s-killall.sh", "k3s-killall.sh")):
            self._tool(root / rel, tool)
        unit = root / "etc/systemd/system/k3s.service"
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text("[Service]\nType=notify\nKillMode=process\n")
        if enabled:
            (root / "state").mkdir(exist_ok=True)
            (root / "state/enabled").touch()

    def write_node_files(self, name: str, config_yaml: str, token: str, dropins: dict[str, str]) -> None:
        root = self.root(name)
        k3s_dir = root / "etc/rancher/k3s"
        (k3s_dir / "config.yaml.d").mkdir(parents=True, exist_ok=True)
        (k3s_dir / "config.yaml").write_text(config_yaml)
        (k3s_dir / "cluster-token").write_text(token + "\n")
        for file, text in dropins.items():
            (k3s_dir / "config.yaml.d" / file).write_text(text)

    def lose(self, name: str) -> None:
        """The VM is gone (its disk with it)."""
        state = self.load()
        state["running"].pop(name, None)
        self.save(state)
        shutil.rmtree(self.root(name), ignore_errors=True)

    def cluster_of(self, name: str) -> dict | None:
        state = self.load()
        cid = _db_cluster(self.root(name))
        return state["clusters"].get(cid) if cid else None

    def serving(self) -> dict[str, str]:
        """Running server -> the cluster it serves."""
        return dict(self.load()["running"])


# --- the stand-in tools (this file run as a program) -------------------------------------------------------


def _out(text: str) -> None:
    sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))


def _err(text: str, code: int = 1):
    sys.stderr.write(text + "\n")
    sys.exit(code)


@contextmanager
def _world():
    path = Path(os.environ["WORLD"])
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text())
        yield state
        path.write_text(json.dumps(state, indent=1, sort_keys=True))


def _self() -> tuple[str, Path]:
    return os.environ["WORLD_SELF"], Path(os.environ["WORLD_ROOT"])


def _under(root: Path, path: str) -> Path:
    """A path the node's config names, on this VM (its root)."""
    return root / path.lstrip("/")


def _db_cluster(root: Path) -> str | None:
    member = root / "var/lib/rancher/k3s/server/db/etcd/member"
    return member.read_text().strip() if member.exists() else None


def _read_config(root: Path, explicit: str | None) -> dict:
    """pkg/configfilearg: K3S_CONFIG_FILE, else --config, else the default; then its .d drop-ins."""
    path = os.environ.get("K3S_CONFIG_FILE") or explicit or str(root / "etc/rancher/k3s/config.yaml")
    files = [Path(path)] if Path(path).exists() else []
    dot_d = Path(path + ".d")
    if dot_d.is_dir():
        files += sorted(f for f in dot_d.iterdir() if f.is_file() and f.suffix.lower() in (".yaml", ".yml"))
    config: dict = {}
    for file in files:
        config.update(yaml.safe_load(file.read_text()) or {})
    return config


def _quorum(state: dict, cid: str) -> bool:
    cluster = state["clusters"][cid]
    up = [m for m in cluster["members"] if state["running"].get(m) == cid]
    return len(up) * 2 > len(cluster["members"])


def _note_split_brain(state: dict) -> None:
    if len(set(state["running"].values())) > 1:
        state["events"].append(f"SPLIT BRAIN: {sorted(state['running'].items())}")


def _password(root: Path) -> str:
    file = root / "etc/rancher/node/password"
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(uuid.uuid4().hex + "\n")
    return file.read_text().strip()


def _provider_id(config: dict) -> str:
    for arg in config.get("kubelet-arg", []):
        if arg.startswith("provider-id="):
            return arg.split("=", 1)[1]
    return ""


def _k3s_server(args: list[str]) -> None:
    name, root = _self()
    flags: dict[str, str | bool] = {}
    for arg in args:
        key, _, value = arg.lstrip("-").partition("=")
        flags[key] = value if _ else True
    if "config" in flags and flags["config"] is True:
        i = args.index("--config")
        flags["config"] = args[i + 1]
    config = _read_config(root, flags.get("config") if isinstance(flags.get("config"), str) else None)
    server_url = flags.get("server") or config.get("server") or os.environ.get("K3S_URL", "")
    reset, restore = bool(flags.get("cluster-reset")), flags.get("cluster-reset-restore-path") or ""
    data_dir = root / "var/lib/rancher/k3s"
    db = data_dir / "server/db"
    with _world() as state:
        if name in state["running"]:
            _err("listen tcp :6443: bind: address already in use")
        if restore and not reset:
            _err("invalid flag use; --cluster-reset required with --cluster-reset-restore-path")
        if not reset:
            _err("the stand-in runs k3s server only for a reset; the service is started through systemctl")
        if server_url:
            _err("cannot perform cluster-reset while server URL is set - remove server from configuration before resetting")
        cfg_token = flags.get("token") or os.environ.get("K3S_TOKEN", "")
        token_file = data_dir / "server/token"
        if restore and not cfg_token and not token_file.exists():
            _err(f"{token_file} does not exist, please pass --token to complete the restoration")
        token = cfg_token or (_under(root, config["token-file"]).read_text().strip() if config.get("token-file") else "")
        token = token or (token_file.read_text().strip() if token_file.exists() else "")
        state["events"].append(f"reset on {name}: token from {'env/flag' if cfg_token else 'files'}")
        if restore:
            if config.get("etcd-s3"):
                for key in ("etcd-s3-bucket", "etcd-s3-access-key", "etcd-s3-secret-key", "etcd-s3-endpoint"):
                    if not config.get(key):
                        _err(f"failed to get etcd snapshot from S3: {key} is not set")
                snap = state["bucket"].get(f"{config['etcd-s3-bucket']}/{config.get('etcd-s3-folder', '')}/{restore}")
            else:
                snap = state["bucket"].get(f"file:{restore}") if Path(restore).exists() else None
            if snap is None:
                _err(f"etcd snapshot {restore} not found")
            if snap["token"] != token:
                _err("failed to decrypt bootstrap data: the token is not the one the snapshot was taken with")
            data = json.loads(json.dumps(snap["cluster"]))
        else:
            cid = _db_cluster(root)
            if cid is None:
                _err("no etcd data on this server to reset")
            if (db / "reset-flag").exists():
                _err(
                    "cluster-reset was successfully performed, please remove the cluster-reset flag and start k3s "
                    f"normally, if you need to perform another cluster reset, you must first manually delete the {db / 'reset-flag'} file"
                )
            data = json.loads(json.dumps(state["clusters"][cid]))
        new = f"c{len(state['clusters']) + 1}"
        data["members"] = [name]
        state["clusters"][new] = data
        state["resets"] += 1
        if (db / "etcd").exists():
            (db / "etcd").rename(db / f"etcd-old-{state['resets']}")
        (db / "etcd").mkdir(parents=True)
        (db / "etcd/member").write_text(new)
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        (db / "reset-flag").touch()
    _out(RESET_DONE)


def _start(state: dict, name: str, root: Path) -> None:
    if not (root / "etc/systemd/system/k3s.service").exists():
        _err("Failed to start k3s.service: Unit k3s.service not found.", 5)
    if name in state["running"]:
        return
    config = _read_config(root, None)
    db = root / "var/lib/rancher/k3s/server/db"
    password = _password(root)
    cid = _db_cluster(root)
    if cid is not None:
        if name not in state["clusters"][cid]["members"]:
            _err(f"Job for k3s.service failed: etcd member {name} was removed from the cluster; its data cannot start")
        if (db / "reset-flag").exists():
            (db / "reset-flag").unlink()
            state["clusters"][cid]["secrets"].pop(name, None)  # managed.go deleteNodePasswdSecret
    else:
        # Join through `server:`: the cluster behind it must serve, and take this token and password.
        url = config.get("server", "")
        host = url.split("://", 1)[-1].split(":", 1)[0]
        targets = [s for s, c in state["running"].items() if host in (state["vip"], state["servers"].get(s))]
        cid = state["running"][targets[0]] if targets else None
        if not cid or not _quorum(state, cid):
            _err(f"Job for k3s.service failed: no cluster answers at {url} to join")
        token = _under(root, config["token-file"]).read_text().strip()
        if token != state["clusters"][cid]["token"]:
            _err("Job for k3s.service failed: token does not match the cluster's")
        (db / "etcd").mkdir(parents=True)
        (db / "etcd/member").write_text(cid)
        state["clusters"][cid]["members"].append(name)
    cluster = state["clusters"][cid]
    secret = cluster["secrets"].get(name)
    if secret is not None and secret != password:
        _err(f"Job for k3s.service failed: Node password rejected, duplicate hostname or contents of /etc/rancher/node/password may not match server node-passwd entry for {name}")
    cluster["secrets"][name] = password
    cluster["nodes"].setdefault(name, {"providerID": _provider_id(config), "etcd": True})
    encryption = cluster.get("encryption")
    if config.get("secrets-encryption") and encryption is None:
        state["events"].append(f"UNSUPPORTED: {name} started with secrets-encryption on a cluster built without it")
    state.setdefault("loaded", {})[name] = encryption["version"] if config.get("secrets-encryption") and encryption else None
    kubeconfig = root / "etc/rancher/k3s/k3s.yaml"
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    state["running"][name] = cid
    _note_split_brain(state)


def _stop(state: dict, name: str) -> None:
    state["running"].pop(name, None)


def _ready(state: dict, cid: str, name: str) -> bool:
    """A server's Node is Ready while it serves this cluster; an agent's while its VM is up."""
    return state["running"].get(name) == cid or name in state.get("agents_up", [])


def _systemctl(args: list[str]) -> None:
    name, root = _self()
    quiet = "--quiet" in args
    words = [a for a in args if not a.startswith("--")]
    verb = words[0] if words else ""
    now = "--now" in args
    unit = root / "etc/systemd/system/k3s.service"
    with _world() as state:
        if verb == "is-active":
            sys.exit(0 if name in state["running"] else 3)
        if verb == "is-enabled":
            sys.exit(0 if (root / "state/enabled").exists() else 1)
        if verb == "daemon-reload":
            return
        if verb in ("enable", "disable", "start", "restart") and not unit.exists():
            _err(f"Failed to {verb} unit: Unit k3s.service not found.", 5)
        if verb == "enable":
            (root / "state").mkdir(exist_ok=True)
            (root / "state/enabled").touch()
            if now:
                _start(state, name, root)
        elif verb == "disable":
            (root / "state/enabled").unlink(missing_ok=True)
        elif verb == "start":
            _start(state, name, root)
        elif verb == "stop":
            _stop(state, name)
        elif verb == "restart":
            _stop(state, name)
            _start(state, name, root)
        else:
            _err(f"the stand-in systemctl does not know {args}", 2)
    del quiet


def _api(state: dict, server: str | None) -> str:
    """The cluster the request reaches: --server's address (a server's IP or the VIP), else this server."""
    name, _ = _self()
    if server:
        host = server.split("://", 1)[-1].split(":", 1)[0]
        targets = [s for s in state["running"] if host in (state["vip"], state["servers"].get(s))]
    else:
        host, targets = "127.0.0.1", [name] if name in state["running"] else []
    if not targets or not _quorum(state, state["running"][targets[0]]):
        _err(f"The connection to the server {host}:6443 was refused - did you specify the right host or port?")
    return state["running"][targets[0]]


def _kubectl(args: list[str]) -> None:
    server, namespace, output, rest = None, None, None, []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--kubeconfig", "--server", "-n", "-o"):
            value = args[i + 1]
            i += 2
        elif a.startswith(("--server=", "-o=")):
            a, value = a.split("=", 1)
            i += 1
        else:
            rest.append(a)
            i += 1
            continue
        if a == "--kubeconfig" and not Path(value).exists():
            _err(f"stat {value}: no such file or directory")
        server = value if a == "--server" else server
        namespace = value if a == "-n" else namespace
        output = value if a == "-o" else output
    flags = {a for a in rest if a.startswith("--")}
    words = [a for a in rest if not a.startswith("--")]
    with _world() as state:
        cid = _api(state, server)
        cluster = state["clusters"][cid]
        # `get --raw=/readyz` or `get --raw /readyz`; the API server answers only with etcd quorum (_api above).
        if "--raw=/readyz" in flags or ("--raw" in flags and "/readyz" in words):
            _out("ok")
            return
        verb, kind, target = [*words, None, None, None][:3]
        if kind in ("node", "nodes") and namespace is None:
            if verb == "get" and target is None:
                if output == "jsonpath={.items[*].metadata.name}":
                    _out(" ".join(sorted(cluster["nodes"])))
                    return
            elif verb == "get":
                node = cluster["nodes"].get(target)
                if node is None:
                    _err(f'Error from server (NotFound): nodes "{target}" not found')
                if output == "name":
                    _out(f"node/{target}")
                elif output == "jsonpath={.spec.providerID}":
                    _out(node["providerID"])
                elif output == 'jsonpath={.status.conditions[?(@.type=="Ready")].status}':
                    _out("True" if _ready(state, cid, target) else "Unknown")
                else:
                    _err(f"the stand-in kubectl does not know -o {output}", 2)
                return
            elif verb == "delete":
                node = cluster["nodes"].pop(target, None)
                if node is None:
                    if "--ignore-not-found" in flags:
                        return
                    _err(f'Error from server (NotFound): nodes "{target}" not found')
                # member_controller onRemove -> RemovePeer; the GC deletes the owned node-password secret.
                if node.get("etcd") and target in cluster["members"]:
                    cluster["members"].remove(target)
                    if state["running"].get(target) == cid:
                        state["running"].pop(target)
                cluster["secrets"].pop(target, None)
                _out(f'node "{target}" deleted')
                return
        if kind in ("secret", "secrets") and namespace == "kube-system":
            if verb == "get" and target is None and output == "jsonpath={.items[*].metadata.name}":
                _out(" ".join([*sorted(f"{n}.node-password.k3s" for n in cluster["secrets"]), "k3s-serving"]))
                return
            if verb == "delete" and target and target.endswith(".node-password.k3s"):
                if cluster["secrets"].pop(target[: -len(".node-password.k3s")], None) is None and "--ignore-not-found" not in flags:
                    _err(f'Error from server (NotFound): secrets "{target}" not found')
                return
        _err(f"the stand-in kubectl does not know {args}", 2)


def _secrets_encrypt(args: list[str]) -> None:
    name, _ = _self()
    verb = args[0] if args else ""
    with _world() as state:
        if name not in state["running"]:
            _err("secrets-encrypt: the server is not running on this node")
        cid = state["running"][name]
        cluster = state["clusters"][cid]
        enc = cluster.get("encryption")
        loaded = state.get("loaded", {})
        servers = [s for s in cluster["members"]]
        mismatched = [s for s in servers if enc is None or loaded.get(s) != enc["version"]]
        if verb == "status":
            enabled = enc is not None and enc["first"] == "aescbc" and loaded.get(name) == enc["version"]
            _out(f"Encryption Status: {'Enabled' if enabled else 'Disabled'}")
            if enc is not None:
                _out(f"Current Rotation Stage: {enc['stage']}")
                _out("Server Encryption Hashes: " + ("All hashes match" if not mismatched else f"hash does not match on {', '.join(mismatched)}"))
                _out("Active  Key Type  Name")
                _out(" *      AES-CBC   aescbckey" if enc["first"] == "aescbc" else "        AES-CBC   aescbckey")
            return
        if verb == "enable":
            if enc is None:
                cluster["encryption"] = {"first": "identity", "version": 1, "stage": "start"}
            elif enc["first"] == "identity":
                enc.update(first="aescbc", version=enc["version"] + 1)
            return
        if verb == "rotate-keys":
            if enc is None:
                _err("open /var/lib/rancher/k3s/server/cred/encryption-config.json: no such file or directory")
            if enc["stage"] not in ("start", "reencrypt_finished"):
                _err(f"incorrect stage {enc['stage']} found on node {name}")
            if mismatched:
                _err(f"hash does not match between {name} and {mismatched[0]}, fix by restarting all servers")
            enc.update(first="aescbc", version=enc["version"] + 1, stage="reencrypt_finished")
            loaded[name] = enc["version"]  # it reloads its own config while it reencrypts
            return
        if verb in ("prepare", "rotate", "reencrypt"):
            want = {"prepare": ("start", "reencrypt_finished"), "rotate": ("prepare",), "reencrypt": ("rotate",)}[verb]
            if enc is None or enc["stage"] not in want:
                _err(f"incorrect stage {enc['stage'] if enc else 'none'} found on node {name}")
            enc["stage"] = {"prepare": "prepare", "rotate": "rotate", "reencrypt": "reencrypt_finished"}[verb]
            return
        _err(f"the stand-in does not know secrets-encrypt {args}", 2)


def _curl(args: list[str]) -> None:
    if "-o" in args:
        target = args[args.index("-o") + 1]
        Path(target).write_text(
            "#!/bin/sh\n"
            f'{sys.executable} {HERE} install-k3s "$INSTALL_K3S_VERSION" "$INSTALL_K3S_EXEC" '
            '"${INSTALL_K3S_SKIP_ENABLE:-}" "${INSTALL_K3S_SKIP_START:-}"\n'
        )
        return
    url = next(a for a in args if a.startswith("https://"))
    host = url.split("://", 1)[1].split(":", 1)[0]
    name, _ = _self()
    state = json.loads(Path(os.environ["WORLD"]).read_text())
    if host == "127.0.0.1":
        up = name in state["running"]
    else:
        up = any(host in (state["vip"], state["servers"].get(s)) for s in state["running"])
    if not up:
        _err(f"curl: (7) Failed to connect to {host} port 6443", 7)
    _out("pong")


def _install(args: list[str]) -> None:
    """k3s install.sh: the binary, k3s-killall.sh and the unit; enable and start unless skipped."""
    version, exec_, skip_enable, skip_start = args
    name, root = _self()
    world = World.__new__(World)
    world.bash = shutil.which("bash")
    world.base = Path(os.environ["WORLD"]).parent
    world.install_k3s_files(name, enabled=skip_enable != "true")
    with _world() as state:
        state["events"].append(f"installed {version} {exec_} on {name}")
        if skip_start != "true" and skip_enable != "true":
            _start(state, name, root)


def _killall() -> None:
    name, _ = _self()
    with _world() as state:
        _stop(state, name)


def main(argv: list[str]) -> None:
    tool, args = argv[0], argv[1:]
    with open(os.environ["WORLD_LOG"], "a") as log:
        log.write(" ".join([tool, *args]) + "\n")
    if tool == "k3s":
        if args[:1] == ["server"]:
            _k3s_server(args[1:])
        elif args[:1] == ["kubectl"]:
            _kubectl(args[1:])
        elif args[:1] == ["secrets-encrypt"]:
            _secrets_encrypt(args[1:])
        else:
            _err(f"the stand-in k3s does not know {args}", 2)
    elif tool == "systemctl":
        _systemctl(args)
    elif tool == "curl":
        _curl(args)
    elif tool == "k3s-killall.sh":
        _killall()
    elif tool == "install-k3s":
        _install(args)
    elif tool in ("cloud-init", "sleep"):
        return
    else:
        _err(f"no stand-in for {tool}", 127)


if __name__ == "__main__":
    main(sys.argv[1:])
