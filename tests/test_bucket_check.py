"""check-bucket.sh run for real: the AWS CLI against moto's S3 server on localhost (both from .ci/s3-venv.sh,
a venv of their own), buckets made with and without versioning, object lock and a default retention.

moto answers GetBucketVersioning and GetObjectLockConfiguration as the AWS S3 API reference describes them
(`ObjectLockConfiguration.ObjectLockEnabled`, `Rule.DefaultRetention.{Mode, Days, Years}`; a bucket without a
lock configuration answers `ObjectLockConfigurationNotFoundError`), the shapes MinIO also answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from components.backup import scripts
from config.model import BackupConfig, ChtSettings
from offline.engine import ROOT
from tests import tools

KEY_ID = "AKIACHECKBUCKETTEST1"
SECRET = "check/Bucket+Secret'Key9"
S3_INSTALL = tools.INSTALL["aws"]


def s3_tool(name: str) -> str:
    """`aws` or `moto_server`: from S3_TOOLS (what .ci/s3-venv.sh prints), the repository's build/venv-s3, or PATH."""
    for directory in (os.environ.get("S3_TOOLS"), str(ROOT / "build" / "venv-s3" / "bin")):
        if directory and (Path(directory) / name).is_file():
            return str(Path(directory) / name)
    path = tools.find(name)
    if path is None:
        tools.unavailable(f"{name} is not installed ({S3_INSTALL})")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A local S3 (moto) and the AWS CLI; yields (endpoint, environment for the CLI with the key in it)."""
    aws, server = s3_tool("aws"), s3_tool("moto_server")
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "PATH": f"{Path(aws).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path_factory.mktemp("home")),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        for _ in range(100):  # until it answers (a readiness poll, not a timing)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield endpoint, env, aws
    finally:
        process.terminate()
        process.wait()
        log.close()


def make_bucket(s3, *, versioning: bool = False, lock: bool = False, retention: dict | None = None) -> str:
    endpoint, env, aws = s3
    bucket = f"cht-{uuid.uuid4().hex[:12]}"

    def api(*args):
        subprocess.run([aws, "--endpoint-url", endpoint, "--region", "us-east-1", "s3api", *args], env=env, check=True,
                       capture_output=True)

    api("create-bucket", "--bucket", bucket, *(["--object-lock-enabled-for-bucket"] if lock else []))
    if versioning and not lock:
        api("put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    if retention:
        config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}}
        api("put-object-lock-configuration", "--bucket", bucket, "--object-lock-configuration", json.dumps(config))
    return bucket


def run_check(s3, tmp_path: Path, bucket: str, mode: str, *, kept: int = 30, env: dict | None = None, ca: bool = False):
    endpoint, base_env, _ = s3
    backup = BackupConfig.model_validate(
        {
            "s3": {"endpoint": endpoint, "bucket": bucket, "insecure": True, "objectLock": mode,
                   **({"caBundle": TEST_CA} if ca else {})},
            "counties": {"retentionDays": kept},
        }
    )
    script = tmp_path / scripts.BUCKET_CHECK
    script.write_text(scripts.bucket_check_script(backup, [ChtSettings.model_validate(COUNTY)]))
    return subprocess.run(["bash", str(script)], env=base_env if env is None else env, capture_output=True, text=True,
                          cwd=tmp_path)


COUNTY = {"version": "4.22.0", "couchdbStorageGb": 20, "budget": {"cpu": 1, "memoryGb": 4}}
# The backup test stack's CA bundle: the script writes it to a file of its own for --ca-bundle.
TEST_CA = yaml.safe_load((ROOT / "tests" / "stacks" / "Pulumi.backup.yaml").read_text())["config"]["cht-hosting:backup"]["s3"]["caBundle"]


def test_a_locked_bucket_passes_when_lock_is_required(s3, tmp_path):
    bucket = make_bucket(s3, lock=True, retention={"Mode": "GOVERNANCE", "Days": 14})
    result = run_check(s3, tmp_path, bucket, "required")
    assert result.returncode == 0, result.stderr
    assert f"bucket {bucket}: versioning Enabled, object lock GOVERNANCE, default retention 14 days" in result.stdout
    assert "WARNING" not in result.stderr and "COMPLIANCE" not in result.stdout


def test_a_bucket_without_lock_fails_when_required_naming_each_problem(s3, tmp_path):
    bucket = make_bucket(s3)
    result = run_check(s3, tmp_path, bucket, "required")
    assert result.returncode == 1
    assert f"bucket {bucket}: versioning is off, not Enabled" in result.stderr
    assert f"bucket {bucket}: object lock is not enabled: create the bucket with it" in result.stderr
    assert f"backup.s3.objectLock is required and bucket {bucket} is not immutable" in result.stderr


def test_preferred_only_warns_and_off_does_not_ask(s3, tmp_path):
    bucket = make_bucket(s3, versioning=True)
    result = run_check(s3, tmp_path, bucket, "preferred")
    assert result.returncode == 0
    assert f"WARNING: bucket {bucket}: object lock is not enabled" in result.stderr
    assert "versioning" not in result.stderr  # it is on
    assert "its copies are not immutable (backup.s3.objectLock: preferred)" in result.stdout
    result = run_check(s3, tmp_path, bucket, "off")
    assert result.returncode == 0 and result.stderr == ""
    assert "object lock not checked (backup.s3.objectLock: off)" in result.stdout


def test_lock_without_a_default_retention_locks_nothing(s3, tmp_path):
    bucket = make_bucket(s3, lock=True)
    result = run_check(s3, tmp_path, bucket, "required")
    assert result.returncode == 1
    assert "object lock has no default retention: k3s and Velero set none on what they write" in result.stderr


def test_compliance_mode_and_a_lock_longer_than_the_backups_are_kept_are_said(s3, tmp_path):
    bucket = make_bucket(s3, lock=True, retention={"Mode": "COMPLIANCE", "Years": 1})
    result = run_check(s3, tmp_path, bucket, "required", kept=30, ca=True)
    assert result.returncode == 0, result.stderr
    assert "object lock COMPLIANCE, default retention 365 days" in result.stdout
    assert "COMPLIANCE mode: nobody, the storage's administrators included" in result.stdout
    assert "WARNING: the default retention (365 days) is longer than the shortest time a county backup is kept (30 days)" in result.stderr


def test_a_missing_bucket_or_key_fails_clearly(s3, tmp_path):
    result = run_check(s3, tmp_path, "cht-no-such-bucket", "preferred")
    assert result.returncode == 1 and "bucket cht-no-such-bucket at http://127.0.0.1:" in result.stderr
    assert "cannot be reached" in result.stderr
    env = {k: v for k, v in s3[1].items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")}
    result = run_check(s3, tmp_path, make_bucket(s3), "required", env=env)
    assert result.returncode == 1 and "no key: put one that may read the bucket's settings in the environment" in result.stderr


def test_the_key_never_reaches_a_command_line(s3, tmp_path):
    """An `aws` in front of the real one records every argument it is given."""
    _, env, aws = s3
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "aws").write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" >>"{tmp_path}/argv"\nexec "{aws}" "$@"\n')
    (shim / "aws").chmod(0o755)
    bucket = make_bucket(s3, lock=True, retention={"Mode": "GOVERNANCE", "Days": 7})
    result = run_check(s3, tmp_path, bucket, "required", env={**env, "PATH": f"{shim}{os.pathsep}{env['PATH']}"})
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "argv").read_text()
    assert "get-object-lock-configuration" in argv and "get-bucket-versioning" in argv
    assert KEY_ID not in argv and SECRET not in argv


def test_check_bucket_passes_shellcheck(tmp_path):
    backup = BackupConfig.model_validate({"s3": {"endpoint": "https://s3.example.org", "bucket": "cht-backups",
                                                 "caBundle": TEST_CA}})
    path = tmp_path / scripts.BUCKET_CHECK
    path.write_text(scripts.bucket_check_script(backup, []))
    result = subprocess.run([tools.need("shellcheck"), "--shell=bash", "--severity=style", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
