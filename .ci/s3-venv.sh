#!/usr/bin/env bash
# The S3 tools tests/test_bucket_check.py runs check-bucket.sh with: the AWS CLI (what the script calls) and
# moto's server (a local S3 that answers object lock and versioning as S3 does). Both pin many libraries
# (botocore, PyYAML, docutils, flask): a venv of their own, never the project's. Prints its bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv-s3
if [ ! -x "$venv/bin/aws" ] || [ ! -x "$venv/bin/moto_server" ] || ! cmp -s requirements-s3.txt "$venv/requirements-s3.txt"; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-s3.txt >&2
  cp requirements-s3.txt "$venv/requirements-s3.txt"
fi
echo "$PWD/$venv/bin"
