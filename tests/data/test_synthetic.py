"""The synthetic data set's demand models: moments, autocorrelation, life cycles,
promotion dips, determinism and spec validation."""

import re

import jax
import numpy as np
import pytest

from orpr_jax.data.dataset import ROW_COLUMNS
from orpr_jax.data.demand_memory import promo_dips
from orpr_jax.data.synthetic import (
    _FLOAT_RANGES,
    SyntheticSpec,
    generate,
    generate_with_truth,
)

SIZE = {"num_skus": 150, "num_days": 730}


@pytest.fixture(scope="module")
def memory():
    return generate_with_truth(jax.random.key(0), SyntheticSpec(**SIZE))


@pytest.fixture(scope="module")
def iid():
    return generate_with_truth(jax.random.key(0), SyntheticSpec(demand_model="iid", **SIZE))


def _active(truth, num_days):
    t = np.arange(num_days)[:, None]
    return (t >= truth.launch_day) & (t < truth.end_day)


def _residual_acf(data, truth, lag):
    """Mean over always-active rows with mean >= 3 of the lag autocorrelation of
    log(1 + demand) - log(1 + expected demand), each row's day-of-week means removed."""
    keep = (data.rows["mean_demand"].to_numpy() >= 3.0) & _active(truth, data.num_days).all(0)
    assert keep.sum() >= 30
    r = np.log1p(data.demand[:, keep].astype(np.float64))
    r -= np.log1p(truth.expected_demand[:, keep])
    dow = np.arange(data.num_days) % 7
    for k in range(7):
        r[dow == k] -= r[dow == k].mean(axis=0)
    r /= r.std(axis=0)
    return float(np.mean(r[lag:] * r[:-lag]))


def test_memory_residuals_are_autocorrelated(memory, iid):
    # Measured (key 0, 150 SKUs x 730 days): memory lag 1 ~ 0.24, lag 7 ~ 0.08; iid both
    # within 0.01 of 0 (the standard error of the mean is ~ 1 / sqrt(730 * 50) = 0.005;
    # removing 104 weeks' day-of-week means biases lag 7 by ~ -1/104).
    assert _residual_acf(*memory, lag=1) > 0.15
    assert _residual_acf(*memory, lag=7) > 0.04
    for lag in (1, 7):
        assert abs(_residual_acf(*iid, lag=lag)) < 0.03


def test_sku_rows_share_their_level(memory):
    """Rows of one SKU in different warehouses move together (shared AR level)."""
    data, truth = memory
    log_m = np.log(np.maximum(truth.multiplier, 1e-12))
    sku = data.rows["sku"].to_numpy()
    pairs = [(i, i + 1) for i in range(len(sku) - 1)
             if sku[i] == sku[i + 1] and truth.launch_day[i] == 0 and truth.end_day[i] == 730]
    corr = [np.corrcoef(log_m[:, i], log_m[:, j])[0, 1] for i, j in pairs]
    assert len(corr) >= 30 and np.median(corr) > 0.5


def test_mean_stays_calibrated(memory, iid):
    """Over active days a row's mean demand is near ``mean_demand`` (x seasonality, trend
    and promotions, which add ~10%): median ratio in [0.8, 1.25], 90% within a factor 3."""
    for data, truth in (memory, iid):
        level = data.rows["mean_demand"].to_numpy()
        active = _active(truth, data.num_days)
        ratio = (data.demand * active).sum(0) / active.sum(0) / level
        fast = level >= 1.0  # slower rows are dominated by Poisson noise
        assert 0.8 < np.median(ratio[fast]) < 1.25
        assert np.mean((ratio[fast] > 1 / 3) & (ratio[fast] < 3)) > 0.9
        total = (data.demand * active).sum() / (level * active.sum(0)).sum()
        assert 0.8 < total < 1.5


def _post_and_pre(data, truth):
    """Demand / expected demand on the 3 days after each promotion, and on days 8..14
    before each one (a baseline out of the pull-forward window)."""
    on = data.promo > 0
    num_days = on.shape[0]
    post, pre = [], []
    for t, r in zip(*np.nonzero(~on[1:] & on[:-1]), strict=True):
        t += 1  # first day after the promotion
        if t + 3 <= num_days and not on[t:t + 3, r].any():
            post.append(data.demand[t:t + 3, r].sum() / truth.expected_demand[t:t + 3, r].sum())
    for t, r in zip(*np.nonzero(on[1:] & ~on[:-1]), strict=True):
        t += 1  # first promotion day
        if t >= 14 and not on[t - 14:t - 7, r].any():
            exp = truth.expected_demand[t - 14:t - 7, r].sum()
            if exp > 0:
                pre.append(data.demand[t - 14:t - 7, r].sum() / exp)
    return np.mean(post), np.mean(pre)


def test_post_promotion_dip(memory, iid):
    # Measured (key 0): memory post ~ 0.69 of the expected demand vs baseline ~ 1.01;
    # iid ~ 1.00 / 0.98.
    post, pre = _post_and_pre(*memory)
    assert post < 0.85 * pre
    post, pre = _post_and_pre(*iid)
    assert abs(post / pre - 1.0) < 0.1


def test_promo_dips_by_hand():
    spec = SyntheticSpec(pre_promo_days=2, pre_promo_dip=0.2, post_promo_days=2,
                         post_promo_dip=0.25)
    promo = np.zeros((8, 2), np.float32)
    promo[3:5] = 1.0
    f = promo_dips(promo, np.array([3.0, 1.0]), spec)
    # Row 0 (uplift 3): eve 1 - 0.2, two days ahead 1 - 0.2 / 2; after: depth
    # 0.25 * (3 - 1) = 0.5 on day 5, half of it on day 6. Row 1 (uplift 1): no hangover.
    np.testing.assert_allclose(f[:, 0], [1, 0.9, 0.8, 1, 1, 0.5, 0.75, 1])
    np.testing.assert_allclose(f[:, 1], [1, 0.9, 0.8, 1, 1, 1, 1, 1])


def test_launches_and_discontinuations(memory):
    data, truth = memory
    num_days = data.num_days
    launched, ended = truth.launch_day > 0, truth.end_day < num_days
    assert 0.05 < launched.mean() < 0.3 and 0.03 < ended.mean() < 0.25
    active = _active(truth, num_days)
    assert data.demand[~active].sum() == 0 and data.promo[~active].sum() == 0
    # Launched fast movers do sell after their launch; the table holds the window.
    fast = data.rows["mean_demand"].to_numpy() >= 2.0
    assert all(data.demand[truth.launch_day[i]:, i].sum() > 0
               for i in np.flatnonzero(launched & fast))
    np.testing.assert_array_equal(data.rows["launch_day"], truth.launch_day)
    np.testing.assert_array_equal(data.rows["end_day"], truth.end_day)
    # A SKU's rows share the life cycle.
    by_sku = data.rows.assign(l=truth.launch_day, e=truth.end_day).groupby("sku")
    assert (by_sku["l"].nunique() == 1).all() and (by_sku["e"].nunique() == 1).all()


def test_same_key_same_arrays():
    spec = SyntheticSpec(num_skus=60, num_days=120)
    a, ta = generate_with_truth(jax.random.key(7), spec)
    b = generate(jax.random.key(7), spec)
    np.testing.assert_array_equal(a.demand, b.demand)
    np.testing.assert_array_equal(a.promo, b.promo)
    assert a.rows.equals(b.rows)
    c = generate(jax.random.key(8), spec)
    assert c.demand.shape != a.demand.shape or not np.array_equal(c.demand, a.demand)
    # Both models of one key share the rows and their attributes.
    d = generate(jax.random.key(7), SyntheticSpec(demand_model="iid", num_skus=60,
                                                  num_days=120))
    cols = [*ROW_COLUMNS, "mean_demand", "promo_uplift"]
    assert d.rows[cols].equals(a.rows[cols])
    assert not np.array_equal(d.demand, a.demand)
    assert np.all(ta.multiplier >= 0) and np.isfinite(ta.multiplier).all()


def test_iid_is_the_previous_generator():
    """Figures of the generator before the memory model (key 3, 60 SKUs x 120 days)."""
    data = generate(jax.random.key(3), SyntheticSpec(num_skus=60, num_days=120,
                                                     demand_model="iid"))
    assert data.demand.shape == (120, 154)
    assert data.demand.sum() == 43221.0 and data.promo.sum() == 386.0
    assert (data.demand * np.arange(120)[:, None]).sum() == 2579809.0
    np.testing.assert_array_equal(data.demand[:, :5].sum(0), [10, 12, 0, 13, 2])


def test_tiny_panels_generate():
    for spec in (SyntheticSpec(num_skus=1, num_warehouses=1, num_days=2),
                 SyntheticSpec(num_skus=3, num_days=5, launch_share=1.0,
                               discontinue_share=1.0, post_promo_days=20)):
        data = generate(jax.random.key(1), spec)
        assert data.demand.shape[0] == spec.num_days and np.isfinite(data.demand).all()


def test_memory_off_knobs_give_the_iid_mean():
    """With every memory knob at zero the multiplier is 1 everywhere."""
    spec = SyntheticSpec(num_skus=20, num_days=60, ar_phi_low=0.0, ar_phi_high=0.0,
                         ar_log_sd_low=0.0, ar_log_sd_high=0.0, row_log_sd=0.0,
                         level_shift_rate=0.0, launch_share=0.0, discontinue_share=0.0,
                         pre_promo_dip=0.0, post_promo_dip=0.0)
    _, truth = generate_with_truth(jax.random.key(2), spec)
    np.testing.assert_array_equal(truth.multiplier, 1.0)


@pytest.mark.parametrize(("name", "bad"), [
    *[(name, high + 0.5) for name, (_, high) in _FLOAT_RANGES.items()],
    *[(name, low - 0.1) for name, (low, _) in _FLOAT_RANGES.items()],
])
def test_float_field_out_of_range(name, bad):
    low, high = _FLOAT_RANGES[name]
    match = f"{name}={bad!r} is not allowed; it must be a number in [{low:g}, {high:g}]"
    with pytest.raises(ValueError, match=re.escape(match)):
        SyntheticSpec(**{name: bad})


@pytest.mark.parametrize("name", ["launch_ramp_days", "fade_days", "pre_promo_days",
                                  "post_promo_days"])
@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_int_field_out_of_range(name, bad):
    with pytest.raises(ValueError, match=rf"{name}={bad!r} is not allowed; it must be an "
                                         r"integer >= 0"):
        SyntheticSpec(**{name: bad})


@pytest.mark.parametrize("bad", ["nan-string", True, None])
def test_float_field_rejects_non_numbers(bad):
    with pytest.raises(ValueError, match=rf"launch_share={bad!r} is not allowed"):
        SyntheticSpec(launch_share=bad)


def test_float_field_rejects_nan():
    with pytest.raises(ValueError, match=r"row_log_sd=nan is not allowed; it must be a number "
                                         r"in \[0, 2\]"):
        SyntheticSpec(row_log_sd=float("nan"))


def test_demand_model_and_ordered_ranges():
    with pytest.raises(ValueError, match=r"demand_model='ar' is not allowed; use 'memory' or "
                                         r"'iid'"):
        SyntheticSpec(demand_model="ar")
    with pytest.raises(ValueError, match=r"ar_phi_low=0\.9 is not allowed; it must be <= "
                                         r"ar_phi_high=0\.6"):
        SyntheticSpec(ar_phi_low=0.9, ar_phi_high=0.6)
    with pytest.raises(ValueError, match=r"ar_log_sd_low=0\.4 is not allowed; it must be <= "
                                         r"ar_log_sd_high=0\.3"):
        SyntheticSpec(ar_log_sd_low=0.4, ar_log_sd_high=0.3)
