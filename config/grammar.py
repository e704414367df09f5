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

from .names import MAX_DNS_LABEL, MAX_DNS_NAME

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
    name, _, port = value.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536 and port[0] != "0"):
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
_TAG = re.compile(r"[\w][\w.-]{0,127}")
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
    if not ok:
        raise ValueError(
            f"{value!r} is not a pinned image reference; write repository:tag or repository@sha256:<digest>, "
            "e.g. medicmobile/upgrade-service:0.32"
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
