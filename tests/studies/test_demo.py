"""The demo job end to end on a small data set, and the metric tables."""

import json

from orpr_jax.studies import demo
from orpr_jax.evaluation.tables import COLUMNS, markdown_table


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert demo.main(["--skus", "25", "--out", str(tmp_path)]) == 0
    heur = json.loads((tmp_path / "heuristics.json").read_text())
    names = set(heur)
    assert {"constant (mean demand)", "base-stock (tuned per row)",
            "inventory days (tuned per row)", "(s, S) (tuned per row)",
            "base-stock following the forecast (tuned per row)"} <= names
    assert len(names) == 6 and any(n.startswith("incumbent rule (L + R + ") for n in names)
    # Tuning per row on the first year beats ordering the mean demand on the second.
    assert heur["base-stock (tuned per row)"]["total_cost"] < heur["constant (mean demand)"][
        "total_cost"]
    orp = json.loads((tmp_path / "or_policy.json").read_text())
    assert len(orp["results"]) == 4 and len(orp["labels"]) == 2
    for metrics in orp["results"].values():
        assert 0.0 < metrics["fill_rate"] <= 1.0
    assert (tmp_path / "or_policy.md").read_text().startswith("| policy |")
    assert "OR policy" in capsys.readouterr().out


def test_markdown_table_layout():
    metrics = {key: 1.0 for key, _, _ in COLUMNS}
    lines = markdown_table([("a", metrics), ("b", metrics)]).splitlines()
    assert len(lines) == 4 and lines[1].count("|") == len(COLUMNS) + 2
    assert lines[2].startswith("| a | 1 |")
