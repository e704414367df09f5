"""The cht-hosting policy pack: `pulumi preview --policy-pack policy`. The rules live in rules.py."""

import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The pack is run by path (not as a package), so make rules.py importable from here.
sys.path.insert(0, str(HERE))
# rules.py shares config/names.py (standard library only) with the program. The pack's venv has none of the
# program's dependencies, so that one module is loaded without config/__init__.py (which needs pydantic).
_config = types.ModuleType("config")
_config.__path__ = [str(HERE.parent / "config")]
sys.modules.setdefault("config", _config)

from pulumi_policy import PolicyPack  # noqa: E402
from rules import ENFORCEMENT_LEVEL, POLICIES  # noqa: E402

PolicyPack(name="cht-hosting-production", enforcement_level=ENFORCEMENT_LEVEL, policies=POLICIES)
