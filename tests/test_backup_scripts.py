"""The restore scripts under shellcheck. They run for real elsewhere: restore-county.sh against the Velero
stand-in (tests/test_restore_county.py); the restore drill's record, comparison and Job against a
CouchDB-protocol server (tests/test_backup_drill.py)."""

from __future__ import annotations

import subprocess

from components.backup import scripts
from tests import tools


def test_county_restore_passes_shellcheck(tmp_path):
    path = tmp_path / "restore-county.sh"
    path.write_text(scripts.county_restore_script(velero_namespace="velero"))
    result = subprocess.run(
        [tools.need("shellcheck"), "--shell=bash", "--severity=style", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
