"""The field test's write-up: one report row per field metric, with its unit, and its
Markdown table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orpr_jax.evaluation.field_test.trial import FieldTestResult

__all__ = ["field_test_markdown", "field_test_table"]

#: Short unit of each metric in the Markdown table (the full text is ``UNITS``).
_SHORT_UNITS = {
    "turnover_days": "days (sum on-hand / sum sales)",
    "in_stock_rate": "% of row-days",
    "holding_cost": "per row-day",
    "total_cost": "per row-day",
}

#: Display format of each metric's levels and effects (costs per row-day).
_FORMATS = {
    "turnover_days": ("{:.2f}", "{:+.2f}"),
    "in_stock_rate": ("{:.2%}", "{:+.2%}"),
    "holding_cost": ("{:,.2f}", "{:+,.2f}"),
    "total_cost": ("{:,.2f}", "{:+,.2f}"),
}


def field_test_table(result: FieldTestResult) -> list[dict]:
    """One report row per metric, as plain floats.

    Args:
        result: a :class:`FieldTestResult`.

    Returns:
        A list of dicts with keys ``metric``, ``unit`` (:data:`~.trial.UNITS`: costs per
        row-day, turnover as a ratio of sums per cell), ``control_pre``, ``control_post``,
        ``treated_pre``, ``treated_post``, ``did_effect``, ``did_se``, ``did_p``,
        ``pretrend_slope``, ``pretrend_p``, ``matched_att``, ``matched_se``,
        ``matched_p``, ``num_treated``, ``num_control``.
    """
    rows = []
    for name, m in result.metrics.items():
        rows.append(
            {
                "metric": name,
                "unit": m.unit,
                "control_pre": m.control_pre,
                "control_post": m.control_post,
                "treated_pre": m.treated_pre,
                "treated_post": m.treated_post,
                "did_effect": m.did.effect,
                "did_se": m.did.se,
                "did_p": m.did.p_value,
                "pretrend_slope": m.did.pretrend_slope,
                "pretrend_p": m.did.pretrend_p,
                # NaN where no treated row had a control within the caliper.
                "matched_att": m.matched.att if m.matched else float("nan"),
                "matched_se": m.matched.se if m.matched else float("nan"),
                "matched_p": m.matched.p_value if m.matched else float("nan"),
                "num_treated": int(np.sum(result.treated)),
                "num_control": int(np.sum(~result.treated)),
            }
        )
    return rows


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def field_test_markdown(table: FieldTestResult | Sequence[dict]) -> str:
    """The :func:`field_test_table` rows as a GitHub Markdown table.

    Args:
        table: a :class:`FieldTestResult` or the rows of :func:`field_test_table`.

    Returns:
        The Markdown text (a unit column; effects as ``effect ± SE``; costs per row-day;
        in-stock rates in percent, their effects in percentage points).
    """
    rows = field_test_table(table) if isinstance(table, FieldTestResult) else list(table)
    head = (
        "| metric | unit | control pre | control post | treated pre | treated post | "
        "DiD effect ± SE | p | pre-trend p | matched ATT ± SE |"
    )
    sep = "|---|---|" + "---:|" * 8
    body = []
    for r in rows:
        level, effect = _FORMATS.get(r["metric"], ("{:.4g}", "{:+.4g}"))
        se = effect.replace("+", "")
        body.append(
            f"| {r['metric']} | {_SHORT_UNITS.get(r['metric'], r.get('unit', ''))} | "
            f"{level.format(r['control_pre'])} | "
            f"{level.format(r['control_post'])} | {level.format(r['treated_pre'])} | "
            f"{level.format(r['treated_post'])} | "
            f"{effect.format(r['did_effect'])} ± {se.format(r['did_se'])} | "
            f"{_p(r['did_p'])} | {_p(r['pretrend_p'])} | "
            + (f"{effect.format(r['matched_att'])} ± {se.format(r['matched_se'])} |"
               if np.isfinite(r["matched_att"]) else "n/a (no match within the caliper) |")
        )
    return "\n".join([head, sep, *body])
