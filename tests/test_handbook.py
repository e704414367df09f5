"""The handbook stays true: every runbook has its parts, and every command and config key the docs name exists.

Commands are read from the docs' code (inline `...` and fenced blocks): `make` targets and variables (the
Makefile), `python -m <module>` and its flags (the module's source), the stack outputs `pulumi stack output`
reads (the national test stack's outputs), the restore scripts (its `restoreScripts`), and Pulumi CLI
commands and flags (PULUMI below). Config keys are dotted paths under a config section (`k3s.version`,
`counties.<county>.couchdbUser`, `cht-hosting:backup`), checked against the generated reference.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUNBOOKS = sorted((DOCS / "runbooks").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.rglob("*.md"))]

# The Pulumi CLI (v3) commands and flags the docs use, as the CLI's command tree defines them (pulumi/pulumi,
# pkg/cmd/pulumi; the same tree the Automation API's generated flag interfaces list, e.g.
# `PulumiStateUnprotectOptions`: all, stack, yes). A command or flag not listed here is not known to exist.
PULUMI: dict[str, set[str]] = {
    "up": {"--replace", "--target", "--diff", "--stack", "--yes", "--refresh", "--policy-pack"},
    "preview": {"--diff", "--replace", "--stack", "--policy-pack", "--refresh"},
    "refresh": {"--stack", "--yes", "--diff"},
    "install": set(),
    "login": {"--local"},
    "stack": {"--show-urns", "--show-ids", "--stack"},
    "stack output": {"--json", "--show-secrets", "--stack"},
    "stack select": {"--create", "--stack"},
    "stack init": set(),
    "stack rename": {"--stack"},
    "stack export": {"--file", "--show-secrets", "--stack"},
    "stack import": {"--file", "--force", "--stack"},
    "state unprotect": {"--all", "--stack", "--yes"},
    "state move": {"--source", "--dest", "--include-parents", "--yes"},
    "config cp": {"--dest", "--path", "--stack"},
    "config set": {"--secret", "--path", "--plaintext", "--stack"},
    "config get": {"--path", "--json", "--stack"},
    "import": {"--file", "--stack", "--yes"},
}
# Runbooks whose procedure is not a config edit (recovery on the worst day): they say when and how to check,
# but a plan shows nothing of them.
NO_PLAN = {"restore-county.md", "restore-control-plane.md", "secrets-encryption.md"}


def _code(text: str) -> list[str]:
    """Every command-like line of a page: inline code spans and the lines of fenced blocks."""
    fenced = re.findall(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    lines = [line for block in fenced for line in block.splitlines()]
    outside = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.M | re.S)
    lines += re.findall(r"`([^`\n]+)`", outside)
    return [line.split(" #", 1)[0].strip() for line in lines]


def _commands(prefix: str) -> list[tuple[str, list[str]]]:
    """(page, words) of every command that starts with `prefix` (after a pipe, `&&` or a VAR=value too)."""
    found = []
    for page in PAGES:
        for line in _code(page.read_text()):
            for part in re.split(r"\s*(?:\||&&|;)\s*", line):
                try:
                    words = shlex.split(part)
                except ValueError:
                    words = part.split()
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words = words[1:]
                words = words[: next((i for i, w in enumerate(words) if w in (">", ">>", "<")), len(words))]
                if words and words[0].endswith(prefix):
                    found.append((str(page.relative_to(ROOT)), words))
    return found


@pytest.mark.parametrize("page", RUNBOOKS, ids=lambda p: p.name)
def test_every_runbook_says_when_what_the_plan_shows_and_how_to_check(page):
    text = page.read_text()
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    assert text.startswith("# "), "a runbook starts with its title"
    assert "**When:**" in text or any(h.lower().startswith("when") for h in headings), "when to use it"
    assert re.search(r"^```", text, re.M) or "`pulumi " in text or "`kubectl " in text, "the exact edit or commands"
    if page.name not in NO_PLAN:
        assert any("plan" in h.lower() for h in headings), "what the plan shows"
        assert any(h.lower().startswith("check") or "check" in h.lower() for h in headings), "how to check"


def test_the_readme_index_reaches_every_runbook_and_topic_page():
    readme = (ROOT / "README.md").read_text()
    for page in [*RUNBOOKS, *sorted(DOCS.glob("*.md"))]:
        assert str(page.relative_to(ROOT)) in readme, page


def test_make_targets_and_variables_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w.-]*):", makefile, re.M))
    variables = set(re.findall(r"^([A-Z_]+) \??=", makefile, re.M))
    used = [(page, words) for page, words in _commands("make") if words[0] == "make"]
    assert used
    for page, words in used:
        words = [w for i, w in enumerate(words) if not (i and words[i - 1] == "-C")]  # make -C <clone> test
        for word in words[1:]:
            if "=" in word:
                assert word.split("=")[0] in variables, f"{page}: make variable {word}"
            elif not word.startswith("-"):
                assert word in targets, f"{page}: make target {word}"
    for page in PAGES:  # VAR=value next to make, in prose: `make plan STACK=dev`
        for var in re.findall(r"`make [a-z]+ ([A-Z_]+)=", page.read_text()):
            assert var in variables, f"{page}: make variable {var}"


def test_python_modules_and_their_flags_exist():
    used = [(page, words) for page, words in _commands("python") if len(words) > 2 and words[1] == "-m"]
    assert used
    for page, words in used:
        module = words[2]
        if not (ROOT / module.split(".")[0]).is_dir():
            continue  # a tool's module (pytest, venv, pip), not one of ours
        source = ROOT / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{page}: python -m {module}"
        text = source.read_text()
        for flag in (w.split("=")[0] for w in words[3:] if w.startswith("--")):
            assert f'"{flag}"' in text, f"{page}: python -m {module} {flag}"


# Flags that take a value (the word after them is not a command or an output name).
VALUE_FLAGS = {"-C", "--cwd", "--stack", "-s", "--replace", "--target", "--policy-pack", "--file", "--source", "--dest"}


def _positional(words: list[str]) -> list[str]:
    return [w for i, w in enumerate(words) if not w.startswith("-") and not (i and words[i - 1] in VALUE_FLAGS)]


def test_pulumi_commands_and_flags_exist():
    used = [(page, words) for page, words in _commands("pulumi") if words[0] == "pulumi"]
    assert used
    for page, words in used:
        args = _positional(words)[1:]
        command = next((c for c in (" ".join(args[:2]), args[0] if args else "") if c in PULUMI), None)
        assert command, f"{page}: pulumi {' '.join(words[1:])}"
        for flag in (w.split("=")[0] for w in words[1:] if w.startswith("--") and w != "--cwd"):
            assert flag in PULUMI[command], f"{page}: pulumi {command} {flag}"


def test_stack_outputs_and_restore_scripts_the_docs_name_exist(national):
    outputs = set(national.outputs)
    for page, words in _commands("pulumi"):
        args = _positional(words)
        if args[:3] == ["pulumi", "stack", "output"]:
            for name in args[3:]:
                assert name in outputs, f"{page}: stack output {name}"
    scripts = set(national.outputs["restoreScripts"])
    named = {s for page in PAGES for s in re.findall(r"\b([a-z-]+\.sh)\b", page.read_text())}
    control_plane = {"stop-server.sh", "restore-control-plane.sh", "rejoin-etcd.sh", "finish-restore.sh"}
    assert {"restore-county.sh", *control_plane} <= named
    assert named & {s for s in named if s.startswith(("restore-", "rejoin-"))} | control_plane <= scripts


def _reference_keys() -> set[str]:
    """Every key path of the generated reference: `<section>.<key>`, the county keys as `counties.<key>`."""
    keys: set[str] = set()
    section = None
    for line in (DOCS / "config-reference.md").read_text().splitlines():
        heading = re.match(r"^## `cht-hosting:(\w+)`", line)
        if heading:
            section = heading.group(1)
            keys.add(section)
            continue
        row = re.match(r"^\| `([^`]+)` \|", line)
        if row and section:
            if row.group(1).startswith("cht-hosting:"):
                keys.add(row.group(1).split(":", 1)[1])
            else:
                keys.add(f"{section}.{row.group(1)}")
    keys |= {"counties." + k.split(".", 1)[1] for k in list(keys) if k.startswith("cht.")}
    return keys


def test_config_keys_the_docs_name_exist():
    keys = _reference_keys()
    sections = {k for k in keys if "." not in k}
    checked, unknown = 0, []
    for page in PAGES:
        if page.name in ("config-reference.md", "CHANGELOG.md"):
            continue  # the reference is the key list; the changelog also names keys that are gone
        for span in re.findall(r"`([^`\n]+)`", page.read_text()):
            span = span.removeprefix("cht-hosting:")
            span = re.sub(r"^counties\.<[^>]+>\.", "counties.", span)  # counties.<county>.couchdbUser
            span = re.sub(r"^(\w+(?:\.\w+|\[\])*)[:=].*$", r"\1", span)  # `upgrades: config`, `x=...`
            if not re.fullmatch(r"[a-z]\w*(?:\.\w+|\[\])*", span) or span.split(".")[0].split("[")[0] not in sections:
                continue
            if span.rsplit(".", 1)[-1] in {"conf", "yaml", "yml", "pem", "json", "sh", "txt", "md", "local"}:
                continue  # a file name (vsphere.conf), not a key
            if "." not in span and span not in sections:
                continue
            checked += 1
            if span not in keys:
                unknown.append(f"{page.relative_to(ROOT)}: config key `{span}`")
    assert unknown == [] and checked > 50
