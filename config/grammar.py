"""The real grammar of every value the program renders into a script, nginx, cloud-init, chrony, authorized_keys,
Helm values or a manifest. Each function returns the value or raises ValueError with the fix.

Patterns are matched with `fullmatch` (never `re.match` with `$`, which accepts a trailing newline).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
import struct
from urllib.parse import urlsplit

from . import versions
from .names import MAX_CSI_CLUSTER_ID, MAX_DNS_LABEL, MAX_DNS_NAME, MIN_HARDWARE_VERSION

# --- host names (RFC 1123) --------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_ANY_CASE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?")


def host_name(value: str, *, any_case: bool = False) -> str:
    """An RFC 1123 host name: labels of letters, digits and '-', dots between, no trailing dot, not an IP."""
    label = _LABEL_ANY_CASE if any_case else _LABEL
    labels = value.split(".")
    if (
        not value
        or len(value) > MAX_DNS_NAME
        or not all(label.fullmatch(part) and len(part) <= MAX_DNS_LABEL for part in labels)
        or labels[-1].isdigit()  # 10.0.0.300 is a mistyped address, not a name
    ):
        case = "letters" if any_case else "lower-case letters"
        raise ValueError(
            f"{value!r} is not a DNS host name; use {case}, digits and '-' between dots (no trailing dot, no spaces), "
            "at most 63 characters between dots"
        )
    return value


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return re.fullmatch(r"[0-9.]+", value) is not None


def host(value: str, *, any_case: bool = False) -> str:
    """A host name or an IPv4 address."""
    if is_ipv4(value):
        return value
    try:
        return host_name(value, any_case=any_case)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an IPv4 address nor a DNS host name (letters, digits and '-' between dots, "
            "no trailing dot, no spaces)"
        ) from None


def host_port(value: str) -> str:
    """`host` or `host:port` (a registry name)."""
    name, colon, number = value.partition(":")
    if colon and port(number) is None:
        raise ValueError(f"{value!r} has no valid port after ':'; write host or host:port, e.g. registry.moh.example.org:5000")
    host(name, any_case=True)
    return value


# --- URLs -------------------------------------------------------------------------------------------------

# RFC 3986 characters without those a shell or a YAML template would read: no quotes, '$', '`', '(', ')',
# ';', '*', '!', '\', spaces or control characters.
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#@%+=,&-]+")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url(value: str, schemes: tuple[str, ...] = ("https", "http"), *, placeholder: str | None = None) -> str:
    """An absolute URL with one of `schemes`, a host name or IPv4 host, optional port, and no credentials.

    `placeholder` (e.g. `{version}`) must appear exactly once and is the only brace text allowed.
    """
    example = f"e.g. {schemes[0]}://mirror.moh.example.org/path"
    text = value
    if placeholder is not None:
        if value.count(placeholder) != 1:
            raise ValueError(f"{value!r} must contain {placeholder} exactly once, {example}/{placeholder}/")
        text = value.replace(placeholder, "v0")
    if not _URL_CHARS.fullmatch(text) or _PERCENT.search(text):
        raise ValueError(
            f"{value!r} is not a plain URL: only letters, digits and . _ ~ : / ? # @ % + = , & - are allowed "
            f"(percent-encode anything else), {example}"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} is not a URL with a valid port, {example}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{value!r} must start with {' or '.join(s + '://' for s in schemes)}, {example}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(f"{value!r} carries credentials (user@); remove them, {example}")
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host, {example}")
    host(parts.hostname, any_case=True)
    if port == 0:
        raise ValueError(f"{value!r} has port 0, {example}")
    return value


# --- container images ---------------------------------------------------------------------------------------

# distribution/reference grammar: [domain[:port]/]path-component(/path-component)*[:tag][@digest]
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
_REPOSITORY = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)  # the distribution reference grammar: Go's \w is ASCII
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_repository(value: str) -> str:
    """An image repository without tag, e.g. registry.moh.example.org/medic (what a tag is appended to)."""
    body = value[:-1] if value.endswith("/") else value  # a trailing '/' is dropped where a name is appended
    if not _REPOSITORY.fullmatch(body) or len(value) > 255:
        raise ValueError(
            f"{value!r} is not an image repository; write [registry[:port]/]path in lower case without a tag, "
            "e.g. registry.moh.example.org/medic"
        )
    return value


def image(value: str) -> str:
    """A full image reference: repository with a tag and/or a sha256 digest."""
    rest, _, digest = value.partition("@")
    repository, tag = rest, ""
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = rest.rsplit(":", 1)
    ok = _REPOSITORY.fullmatch(repository) and (tag or digest)
    ok = ok and (not tag or _TAG.fullmatch(tag)) and (not digest or _DIGEST.fullmatch(digest))
    ok = ok and (digest or tag != "latest")  # `latest` moves: the policy pack refuses it (policy/rules.py)
    if not ok:
        raise ValueError(
            f"{value!r} is not a pinned image reference; write repository:tag (a release, never latest) or "
            "repository@sha256:<digest>, e.g. medicmobile/upgrade-service:0.32"
        )
    return value


# --- SSH public keys ------------------------------------------------------------------------------------------

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_COMMENT = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")


def ssh_public_key(value: str) -> str:
    """One OpenSSH public key line: `<type> <base64 blob> [comment]`, no options, the blob naming its type."""
    fix = "paste one public key line (the .pub file), e.g. ssh-ed25519 AAAAC3Nza... ops@moh.example.org"
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"holds more than one line; give each key as its own entry: {fix}")
    parts = value.split(" ", 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(f"does not start with a known key type ({', '.join(SSH_KEY_TYPES)}); {fix}")
    kind, blob = parts[0], parts[1]
    try:
        data = base64.b64decode(blob, validate=True)
        (length,) = struct.unpack(">I", data[:4])
        named = data[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise ValueError(f"the key data is not valid base64 of an SSH key; {fix}") from None
    if named != kind or len(data) < 4 + length + 8:
        raise ValueError(f"the key data is not a {kind} key; {fix}")
    if len(parts) == 3 and not _COMMENT.fullmatch(parts[2]):
        raise ValueError(f"the comment after the key has control characters or extra spaces; {fix}")
    return value


# --- vCenter TLS ------------------------------------------------------------------------------------------------

_SHA1_THUMBPRINT = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){19}")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)-----END CERTIFICATE-----\n?")


def thumbprint(value: str) -> str:
    if not _SHA1_THUMBPRINT.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a SHA-1 certificate thumbprint; write 20 hex pairs separated by ':', e.g. "
            "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01 (openssl x509 -noout -fingerprint -sha1)"
        )
    return value


def pem_certificates(value: str) -> str:
    """One or more PEM certificates and nothing else (no keys, no text between them)."""
    text = value.replace("\r\n", "\n").strip() + "\n"
    position, count = 0, 0
    for match in _PEM_BLOCK.finditer(text):
        between = text[position : match.start()]
        if between.strip():
            break
        try:
            base64.b64decode(match.group(1).replace("\n", ""), validate=True)
        except binascii.Error:
            break
        position, count = match.end(), count + 1
    if count == 0 or text[position:].strip():
        raise ValueError(
            "is not a PEM certificate bundle; paste only the certificates, each from -----BEGIN CERTIFICATE----- "
            "to -----END CERTIFICATE-----"
        )
    return value


# --- names of things in vCenter and Kubernetes ---------------------------------------------------------------

_INVENTORY = re.compile(r"[A-Za-z0-9._()+,&@%-]+(?: [A-Za-z0-9._()+,&@%-]+)*")


def inventory_name(value: str, *, path: bool = False) -> str:
    """A vCenter object name (datacenter, cluster, datastore, port group, template); `path`: '/' separated."""
    parts = value.split("/") if path else [value]
    if not value or len(value) > 255 or not all(_INVENTORY.fullmatch(p) and len(p) <= 80 for p in parts):
        sep = " and '/' between names" if path else ""
        raise ValueError(
            f"{value!r} is not a vCenter name this program accepts; use letters, digits, single spaces and "
            f". _ ( ) + , & @ % -{sep} (at most 80 characters a name; no quotes, '#', ':' or control characters)"
        )
    return value


_ACCOUNT = re.compile(r"(?:[A-Za-z0-9._-]+\\)?[A-Za-z0-9._-]+(?:@[A-Za-z0-9._-]+)?")


def account(value: str) -> str:
    """A vCenter account: user@domain or DOMAIN\\user."""
    if not _ACCOUNT.fullmatch(value) or len(value) > 255:
        raise ValueError(
            f"{value!r} is not a vCenter account name; write user@domain (e.g. k8s-cns@vsphere.local) or DOMAIN\\user"
        )
    return value


_PRINTABLE = re.compile(r"[\x20-\x7e]+")


def one_line(value: str, what: str) -> str:
    """Printable ASCII on one line, no surrounding spaces, no quotes or backslashes."""
    if not _PRINTABLE.fullmatch(value) or value != value.strip() or any(c in value for c in "\"'\\`$"):
        raise ValueError(f"{value!r} is not a valid {what}; use printable characters on one line, without quotes, "
                         "backslashes, '`' or '$'")
    return value


_DATASTORE_URL = re.compile(r"ds:///vmfs/volumes/[A-Za-z0-9._:-]+(?:/[A-Za-z0-9._:-]+)*/?")


def datastore_url(value: str) -> str:
    if not _DATASTORE_URL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a datastore URL; copy it from the datastore's Summary in vCenter, e.g. "
            "ds:///vmfs/volumes/vsan:52ac3b5d7f3e2a1b-9c0d1e2f3a4b5c6d/"
        )
    return value


# --- host paths --------------------------------------------------------------------------------------------------

# Directories a county's CouchDB must never mount: k3s's and the kubelet's own data, the container runtime,
# and the system. A path inside one, or one that contains one (/var, /var/lib), is refused.
PROTECTED_PATHS = (
    "/var/lib/rancher",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/cni",
    "/var/log",
    "/var/run",
    "/run",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt/cni",
    "/tmp",
)
_PATH_CHARS = re.compile(r"[A-Za-z0-9._@+-]+(?:/[A-Za-z0-9._@+-]+)*")


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def host_path(value: str) -> str:
    """An absolute, normalised directory on a node, outside k3s's, the kubelet's and the system's own."""
    body = value[1:] if value.startswith("/") else ""
    if not body or not _PATH_CHARS.fullmatch(body) or posixpath.normpath(value) != value or "/./" in f"{value}/" or "/../" in f"{value}/":
        raise ValueError(
            f"{value!r} is not a normalised absolute path; write it from / with no '..', '.', '//' or trailing '/', "
            "using letters, digits and . _ @ + -, e.g. /srv/cht/couchdb"
        )
    for directory in PROTECTED_PATHS:
        if _within(value, directory) or _within(directory, value):
            raise ValueError(
                f"{value!r} is inside or contains {directory}, which belongs to the node's system, k3s or the "
                "kubelet; keep CouchDB data in a directory of its own, e.g. /srv/cht/couchdb"
            )
    parts = body.split("/")
    if len(parts) < 2 or (parts[0] == "home" and len(parts) < 3):
        raise ValueError(
            f"{value!r} is a top-level directory or a user's home; give CouchDB a directory of its own below it, "
            "e.g. /srv/cht/couchdb"
        )
    return value


# --- addresses and networks ------------------------------------------------------------------------------------


def ipv4(value: object) -> str:
    text = str(value)
    if not is_ipv4(text):
        raise ValueError(f"'{value}' is not an IPv4 address; write four numbers 0-255, e.g. 10.20.0.11")
    return str(ipaddress.IPv4Address(text))


def ipv4_network(value: object) -> str:
    text = str(value)
    try:
        if not re.fullmatch(r"[0-9./]+", text):
            raise ValueError
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError:
        raise ValueError(
            f"'{value}' is not an IPv4 network in CIDR form; write the network address and prefix, e.g. 10.20.0.0/24"
        ) from None


def protected_network(value: object) -> str:
    """A network county pods must not reach: left out of the `0.0.0.0/0` the API and Sentinel policy allows, as an
    ipBlock `except`. Kubernetes takes an `except` only as a strict subset of its `cidr` (kubernetes
    pkg/apis/networking/validation/validation.go ValidateIPBlock, "must be a strict subset of `cidr`"), so every
    address would fail each county's NetworkPolicy at `pulumi up`."""
    network = ipv4_network(value)
    if ipaddress.IPv4Network(network).prefixlen == 0:
        raise ValueError(
            f"'{value}' is every address, and Kubernetes refuses a NetworkPolicy that leaves out all it allows (an "
            "ipBlock except must be a strict subset of its cidr), so every county would fail at `pulumi up`; list the "
            "internal networks API and Sentinel must not reach (to cut them off from every outside address, list "
            "0.0.0.0/1 and 128.0.0.0/1)"
        )
    return network


def ipv4_or_network(value: object) -> str:
    text = str(value)
    try:
        return ipv4(text) if "/" not in text else ipv4_network(text)
    except ValueError:
        raise ValueError(f"'{value}' is not an IPv4 address or network; write e.g. 10.20.0.5 or 10.20.1.0/28") from None


def dns_name(value: str) -> str:
    """A DNS host name that is not an address."""
    if is_ipv4(value):
        raise ValueError(f"'{value}' is an IPv4 address where a DNS host name is needed")
    return host_name(value)


def port(text: str) -> int | None:
    """A TCP port written in ASCII digits (1-65535, no leading zero), or None. Never `isdigit()`: it accepts
    other scripts' digits, which Go's strconv and containerd refuse."""
    if re.fullmatch(r"[1-9][0-9]{0,4}", text) and int(text) < 65536:
        return int(text)
    return None


def smarthost(value: str) -> str:
    """An SMTP server as host:port (Alertmanager's `smarthost`)."""
    name, colon, number = value.rpartition(":")
    ok = bool(colon) and port(number) is not None
    if ok:
        try:
            ipv4(name) if re.fullmatch(r"[0-9.]+", name) else dns_name(name)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(f"{value!r} is not an SMTP server; write host:port, e.g. smtp.moh.example.org:587")
    return value


def interface_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}", value):
        raise ValueError(
            f"'{value}' is not a network interface name; use the name `ip link` shows on the servers, e.g. ens192"
        )
    return value


def registry_name(value: str) -> str:
    """A registries.yaml mirror key: a registry host[:port], or `*` for every registry (k3s)."""
    return value if value == "*" else host_port(value)


def label(value: str, what: str = "Kubernetes name", becomes: str = "a Kubernetes object's name") -> str:
    """An RFC 1123 label: a node, namespace, StorageClass or Secret name (`what`, and what it `becomes`)."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) or len(value) > MAX_DNS_LABEL:
        raise ValueError(
            f"'{value}' is not a valid {what}; use at most {MAX_DNS_LABEL} lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit (it becomes {becomes})"
        )
    return value


def node_name(value: str) -> str:
    return label(value, "node name", "the VM's host name and the Kubernetes node name")


def host_template(value: str) -> str:
    rest = value.replace("{county}", "", 1)
    if "{county}" not in value or "{" in rest or "}" in rest:
        raise ValueError(
            f"'{value}' must contain {{county}} exactly once and no other braces, e.g. {{county}}.cht.example.org"
        )
    dns_name(value.replace("{county}", "county"))
    return value


# --- cron (robfig/cron, which k3s, Velero and Kubernetes CronJobs parse with) ---------------------------------

_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(_MONTHS, 1)}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)
# The descriptors robfig/cron accepts besides five fields.
CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# The longest month each month number can have (February: 29, in leap years).
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ASCII_NUMBER = re.compile(r"[0-9]{1,2}")


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int | None:
    if text.upper() in names:
        return names[text.upper()]
    if _ASCII_NUMBER.fullmatch(text) and low <= int(text) <= high:
        return int(text)
    return None


def _cron_values(text: str, low: int, high: int, names: dict[str, int], question: bool) -> set[int] | None:
    """The values a cron field selects, or None when it is not a field robfig/cron parses."""
    selected: set[int] = set()
    for item in text.split(","):
        span, slash, step = item.partition("/")
        if slash and not (_ASCII_NUMBER.fullmatch(step) and int(step) > 0):
            return None
        if span == "*" or (question and span == "?"):
            start, end = low, high
        else:
            first, dash, last = span.partition("-")
            start = _cron_value(first, low, high, names)
            end = _cron_value(last, low, high, names) if dash else (high if slash else start)
            if start is None or end is None or end < start:
                return None
        selected.update(range(start, end + 1, int(step) if slash else 1))
    return selected


def cron(value: object) -> str:
    text = str(value)
    if text in CRON_DESCRIPTORS:
        return text
    fields = text.split(" ")
    # Five fields separated by single spaces: nothing else (a newline or a tab) reaches a config file.
    values = (
        [_cron_values(f, low, high, names, index in (2, 4)) for index, (f, (_, low, high, names)) in enumerate(zip(fields, _CRON_FIELDS, strict=True))]
        if len(fields) == 5
        else [None]
    )
    if any(v is None for v in values):
        raise ValueError(
            f"'{value}' is not a cron schedule; write five fields (minute 0-59, hour 0-23, day of month 1-31, "
            "month 1-12, day of week 0-6) with *, lists, ranges and /steps, e.g. '0 1 * * *' for 01:00 every day, "
            f"or one of {', '.join(CRON_DESCRIPTORS)}"
        )
    days, months = values[2], values[3]
    restricted_days = fields[2] not in ("*", "?") and fields[4] in ("*", "?")
    if restricted_days and not any(day <= _DAYS_IN_MONTH[m - 1] for m in months for day in days):
        raise ValueError(
            f"'{value}' never runs: no month it names has day {fields[2]}; choose a day of month that occurs, "
            "e.g. '0 1 1 * *'"
        )
    return text


# --- S3 ----------------------------------------------------------------------------------------------------------

_FOLDER_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def folder(value: str) -> str:
    """A folder (key prefix) in a bucket: parts separated by single '/'."""
    parts = str(value).split("/")
    if len(value) > 200 or not all(_FOLDER_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise ValueError(
            f"'{value}' is not a folder name in the bucket; use letters, digits, '.', '_' and '-' (not starting "
            "with '.', '_' or '-'), parts separated by single '/', no leading or trailing '/', e.g. cht/etcd"
        )
    return value


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket(value: str) -> str:
    """An S3 bucket name (AWS's bucket naming rules, which MinIO follows)."""
    text = str(value)
    if (
        not _BUCKET.fullmatch(text) or ".." in text or ".-" in text or "-." in text
        or re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", text)
        or text.startswith(_BUCKET_PREFIXES) or text.endswith(_BUCKET_SUFFIXES)
    ):
        raise ValueError(
            f"'{value}' is not an S3 bucket name; use 3-63 lower-case letters, digits, '-' and '.', starting and "
            "ending with a letter or digit, not shaped like an IP address, e.g. cht-backups"
        )
    return text


def region(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", str(value)):
        raise ValueError(f"'{value}' is not an S3 region name; use lower-case letters, digits and '-', e.g. us-east-1")
    return str(value)


def s3_endpoint(value: str) -> str:
    """The storage's base URL: scheme, host, optional port; no path, query or credentials (k3s wants host[:port])."""
    url(value, ("https", "http"))
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(
            f"'{value}' is not an S3 endpoint URL; write the scheme, host and optional port, no path, "
            "e.g. https://s3.moh.example.org:9000"
        )
    return value.rstrip("/")


def repository_url(value: str) -> str:
    """A Helm repository or mirror URL (http, https or oci); the trailing '/' is dropped."""
    url(value, ("https", "http", "oci"))
    return value.rstrip("/")


def url_template(value: str) -> str:
    return url(value, placeholder="{version}")


# --- e-mail and webhooks (Alertmanager) ----------------------------------------------------------------------

# An addr-spec without comments or quoted parts (RFC 5322 dot-atom), which is what Alertmanager's `to`/`from`
# need; a display name ("Ops <ops@...>") is refused so a value is one address only. Alertmanager expands Go
# templates in `to` and `from` (config/notifiers.go: EmailConfig is templated), so '{' and '}' are refused.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`|~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`|~-]+)*")


def email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    ok = bool(at) and len(value) <= 254 and len(local) <= 64 and _EMAIL_LOCAL.fullmatch(local) is not None
    if ok:
        try:
            dns_name(domain)
            ok = "." in domain
        except ValueError:
            ok = False
    if not ok:
        raise ValueError(
            f"{value!r} is not an e-mail address; write one address without a display name or template braces, "
            "e.g. ops@moh.example.org"
        )
    return value


MAX_WEBHOOK_URL = 2048


def webhook_url_problem(value: str, allow_credentials: bool, secret: str = "monitoringWebhookUrl") -> str | None:
    """What is wrong with a webhook URL, or None. Never echoes the value (it may be a secret)."""
    if len(value) > MAX_WEBHOOK_URL:
        return f"is longer than {MAX_WEBHOOK_URL} characters"
    if not value.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains whitespace, control or non-ASCII characters (percent-encode them)"
    if any(c in value for c in "\"'`$\\{}<>|;^"):
        return "contains quotes, '$', '`', '\\', braces, '<', '>', '|', ';' or '^' (percent-encode them)"
    try:
        parts = urlsplit(value)
        number = parts.port
    except ValueError:
        return "is not a URL with a valid port"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "is not an http(s) URL with a host, e.g. https://alerts.moh.example.org/hook"
    try:
        host(parts.hostname, any_case=True)
    except ValueError:
        return "has a host that is neither a DNS name nor an IPv4 address (letters, digits, '-' and '.')"
    if number == 0:
        return "has port 0"
    if not allow_credentials and (parts.username or parts.password or parts.query or parts.fragment):
        return (
            "carries credentials (user:password@, a query string or a fragment); set the URL as the secret "
            f"{secret} instead (`pulumi config set --secret {secret} ...`)"
        )
    return None


def webhook_url(value: str, secret: str = "monitoringWebhookUrl") -> str:
    """A webhook URL in plain config: no credentials (`secret` is the key that takes one that carries them)."""
    problem = webhook_url_problem(value, allow_credentials=False, secret=secret)
    if problem:
        raise ValueError(f"{value!r} {problem}" if "credentials" not in problem else f"the URL {problem}")
    return value


# --- names of single things ------------------------------------------------------------------------------------

def cluster_id(value: str) -> str:
    if not re.fullmatch(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_CSI_CLUSTER_ID - 1}}}", value):
        raise ValueError(
            f"'{value}' is not a valid CSI cluster id; use 1-{MAX_CSI_CLUSTER_ID} letters, digits, '.', '_' or '-'"
        )
    return value


def organization(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
        raise ValueError(
            f"'{value}' is not a Pulumi organization name; use letters, digits, '-', '_' or '.', "
            "e.g. moh-kenya (self-managed backends: organization)"
        )
    return value


def stack_name(value: str) -> str:
    """A stack of this project, as its file `Pulumi.<name>.yaml` names it (the CLI's stack-name characters)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
        raise ValueError(
            f"'{value}' is not a stack name; use the name of a stack of this project (its file is "
            "Pulumi.<name>.yaml): letters, digits, '-', '_' or '.', e.g. prod-counties-a"
        )
    return value


def couchdb_user(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value):
        raise ValueError(
            f"'{value}' is not a usable CouchDB admin name; use 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter (it goes into COUCH_URL unencoded), e.g. medic"
        )
    return value


def smtp_login(value: str) -> str:
    """An SMTP login: printable ASCII without spaces (Alertmanager sends it in AUTH as is)."""
    if not re.fullmatch(r"[\x21-\x7e]{1,256}", value) or "{{" in value:
        raise ValueError(
            f"{value!r} is not an SMTP login; use 1-256 printable characters without spaces or template braces"
        )
    return value


def volume_handle(value: str) -> str:
    if not re.fullmatch(r"(?:file:)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value):
        raise ValueError(
            f"'{value}' is not a CNS volume ID; copy it from `govc disk.ls -l` or the PV's spec.csi.volumeHandle, "
            "e.g. 0c9a3b5e-1f2d-4c6b-9a8e-7d6c5b4a3f21"
        )
    return value


def data_path(value: str) -> str:
    """A relative path inside a volume (a subPath); `%d` is the CouchDB node number."""
    parts = value.replace("%d", "1").split("/")
    if value and not re.fullmatch(r"[A-Za-z0-9._%-]+(?:/[A-Za-z0-9._%-]+)*", value):
        raise ValueError(
            f"'{value}' is not a relative path inside the volume; use letters, digits, '.', '_', '-' and '/', "
            "e.g. storage/medic-core/couchdb/data"
        )
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts if value) or value.count("%d") > 1 or (
        "%" in value.replace("%d", "")
    ):
        raise ValueError(
            f"'{value}' is not a relative path inside the volume; write e.g. data, storage/medic-core/couchdb/data, "
            "couchdb%d (%d becomes the node number), or \"\" for the volume root"
        )
    return value


# --- releases and small numbers ---------------------------------------------------------------------------------


def release(value: object, form: str, what: str, example: str) -> str:
    """A release name in `form` (versions.PLAIN, V or K3S)."""
    text = str(value)
    if not versions.is_valid(text, form):
        raise ValueError(f"'{value}' is not {what}; write it as {form}, e.g. {example}")
    return text


def cht_version(value: object) -> str:
    text = str(value)
    if not versions.is_valid(text, versions.PLAIN):
        raise ValueError(f"'{value}' is not a CHT Core release; write it as X.Y.Z, e.g. 4.22.0")
    if versions.major(text) not in (4, 5):
        raise ValueError(f"CHT Core {text} is not supported; use a 4.x or 5.x release, e.g. 4.22.0")
    return text


COUCHDB_NODE_COUNTS = (1, 3)


def couchdb_nodes(value: object) -> int:
    if value not in COUCHDB_NODE_COUNTS or isinstance(value, bool):
        raise ValueError(
            f"CouchDB runs as 1 node or as a 3-node cluster, not {value!r}; set 1 (recommended by Medic) or 3"
        )
    return int(value)  # type: ignore[arg-type]


# vSphere hardware versions that exist (pulumi-vsphere accepts 4, 7-11, 13-15, 17-22) and can run the CSI driver.
HARDWARE_VERSIONS = tuple(v for v in (*range(4, 12), *range(13, 16), *range(17, 23)) if v >= MIN_HARDWARE_VERSION)


def hardware_version(value: int) -> int:
    if value not in HARDWARE_VERSIONS:
        raise ValueError(
            f"hardware version {value} cannot run the vSphere CSI driver; use one of "
            f"{', '.join(map(str, HARDWARE_VERSIONS))} ({MIN_HARDWARE_VERSION} or higher, and no higher than your "
            "ESXi hosts support)"
        )
    return value

# No count or size in the config comes near this; a bound keeps numbers inside what Go's int64 durations and
# Kubernetes quantities hold (a 10^20 GB volume or an hour count overflows them).
MAX_COUNT = 1_000_000


# Accounts the Ubuntu cloud image already has for the system; `root` is locked by cloud-init's `disable_root`
# (its authorized_keys get a "Please login as ..." command), so the program could not log in as it.
SYSTEM_USERS = frozenset({"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
                          "www-data", "backup", "list", "irc", "nobody", "systemd-network", "systemd-resolve",
                          "messagebus", "syslog", "sshd", "_apt", "lxd"})


def login_name(value: str) -> str:
    """A Linux user name useradd accepts (at most 32 characters) that is not a system account."""
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ValueError(
            f"'{value}' is not a Linux user name; use at most 32 lower-case letters, digits, '_' and '-', starting "
            "with a letter or '_', e.g. chtadmin"
        )
    if value in SYSTEM_USERS:
        raise ValueError(
            f"'{value}' is a system account of the node image"
            + (" and cloud-init's disable_root locks it for SSH, so the program could not log in" if value == "root" else "")
            + "; use an admin user of its own, e.g. chtadmin"
        )
    return value


_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def time_of_day(value: object) -> str:
    """HH:MM, 24-hour (the backup window's start, UTC)."""
    if not isinstance(value, str) or not _TIME_OF_DAY.fullmatch(value):
        raise ValueError(f"{value!r} is not a time of day; write HH:MM (24-hour, UTC), e.g. '01:00'")
    return value
