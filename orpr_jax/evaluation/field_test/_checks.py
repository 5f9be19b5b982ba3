"""Input checks of :func:`~orpr_jax.evaluation.field_test.trial.run_field_test`: the
design against the data set, and the held-out-rows requirement."""

from __future__ import annotations

from typing import Any

import numpy as np

from orpr_jax.data.dataset import InventoryData


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; expected an integer >= {low}")


def _check_design(data: InventoryData, *, treatment, treated_fraction, pre_days, post_days,
                  start, period_days, warmup_days, seed, rule_noise, caliper, cluster) -> int:
    """Checks the design of :func:`run_field_test` against ``data``; returns the number of
    treated rows. Raises ValueError as documented there."""
    if treatment not in ("random", "rule"):
        raise ValueError(f"treatment={treatment!r} is not allowed; use 'random' or 'rule'")
    if isinstance(treated_fraction, bool) or not (
        isinstance(treated_fraction, float | int) and 0.0 < treated_fraction < 1.0
    ):
        raise ValueError(f"treated_fraction={treated_fraction!r} is not allowed; expected a "
                         "number in (0, 1)")
    _check_int("period_days", period_days, 1)
    _check_int("warmup_days", warmup_days, 0)
    _check_int("start", start, 0)
    _check_int("seed", seed, 0)
    _check_int("pre_days", pre_days, 2 * period_days)
    if pre_days % period_days:
        raise ValueError(f"pre_days={pre_days!r} is not allowed; expected a multiple of "
                         f"period_days={period_days}")
    _check_int("post_days", post_days, period_days)
    if post_days % period_days:
        raise ValueError(f"post_days={post_days!r} is not allowed; expected a multiple of "
                         f"period_days={period_days}")
    if not (np.isfinite(rule_noise) and rule_noise >= 0):
        raise ValueError(f"rule_noise={rule_noise!r} is not allowed; expected a finite "
                         "number >= 0")
    if not (caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; expected a number > 0")
    if cluster not in ("row", "none"):
        raise ValueError(f"cluster={cluster!r} is not allowed; use 'row' or 'none'")
    num_rows = data.num_rows
    num_treated = int(round(treated_fraction * num_rows))
    if not 1 <= num_treated <= num_rows - 1:
        raise ValueError(
            f"treated_fraction={treated_fraction!r} is not allowed for {num_rows} rows: it "
            f"treats {num_treated}; expected between 1 and {num_rows - 1} treated rows"
        )
    total_days = warmup_days + pre_days + post_days
    if start + total_days > data.num_days:
        raise ValueError(
            f"start={start} is not allowed: the field test needs warmup_days + pre_days + "
            f"post_days = {total_days} days and the panel has {data.num_days}; expected "
            f"start <= {data.num_days - total_days}"
        )
    return num_treated


def _check_held_out(data: InventoryData, train_row_ids) -> None:
    """Raises ValueError unless ``train_row_ids`` is a collection of row ids none of which
    is a row of ``data`` (the field test measures on held-out rows only)."""
    if train_row_ids is None or isinstance(train_row_ids, str | bytes):
        raise ValueError(f"train_row_ids={train_row_ids!r} is not allowed; expected the "
                         "collection of row ids the policies were trained or tuned on")
    trained = {str(r) for r in np.asarray(train_row_ids, dtype=object).ravel()}
    rows = data.rows["row_id"].astype(str).to_numpy()
    seen = rows[np.isin(rows, list(trained))]
    if seen.size:
        raise ValueError(
            f"train_row_ids: {seen.size} of the {rows.size} rows of data were trained on "
            f"(e.g. {', '.join(seen[:3])}); the field test runs on held-out rows only: pass "
            "the held-out rows' data set (InventoryData.select_rows)")
