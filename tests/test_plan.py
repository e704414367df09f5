"""The offline plan command: the README's main command."""

from __future__ import annotations

import json

from offline import plan


def test_prod_plan_lists_fifty_counties(capsys, tmp_path):
    assert plan.main(["prod", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Counties (50):" in printed
    assert "  nairobi " in printed and "https://nairobi.echis.moh.example.org" in printed
    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert len(outputs["counties"]) == 50
