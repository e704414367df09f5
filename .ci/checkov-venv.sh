#!/usr/bin/env bash
# checkov (the Kubernetes scanner tests/test_cht_hardening.py runs) pins many libraries: it gets a venv of its
# own, never the project's. Prints the path of the checkov it installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv-checkov
if [ ! -x "$venv/bin/checkov" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-checkov.txt >&2
fi
echo "$PWD/$venv/bin/checkov"
