"""The cht-hosting policy pack: `pulumi preview --policy-pack policy`. The rules live in rules.py."""

import sys
from pathlib import Path

# The pack may be run by path (not as a package), so make rules.py importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pulumi_policy import PolicyPack
from rules import ENFORCEMENT_LEVEL, POLICIES

PolicyPack(name="cht-hosting-production", enforcement_level=ENFORCEMENT_LEVEL, policies=POLICIES)
