"""``python -m orpr_jax.studies.suite --quick``: runs, writes its JSON, renders the table."""

from __future__ import annotations

import json

from orpr_jax.studies import suite as study


def test_quick_study_runs_and_renders(tmp_path, capsys):
    path = tmp_path / "suite.json"
    assert study.main(["--quick", "--json", str(path)]) == 0
    data = json.loads(path.read_text())
    assert data["quick"] and len(data["cases"]) == len(study.QUICK)
    for case in data["cases"]:
        ref, bs, cp = case["reference"], case["base_stock"], case["capped"]
        assert ref["kind"] == ("exact" if case["L"] <= 4 else "published")
        assert bs["cost"] > 0 and cp["cost"] > 0 and case["seconds"] > 0
        if case["L"] <= 4:  # exact: both heuristics at or above the optimum, no SE
            assert bs["gap_pct"] >= -1e-4 and cp["gap_pct"] >= -1e-4
            assert bs["gap_se_pct"] == 0 and cp["cost"] <= bs["cost"] + 1e-9
        else:
            assert bs["gap_se_pct"] > 0 and bs["row_days"] > 0
    capsys.readouterr()
    assert study.main(["--render", str(path)]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") == len(data["cases"]) + 2 and "(pub.)" in table  # + header
