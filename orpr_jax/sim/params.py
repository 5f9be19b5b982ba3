"""Host-side construction and validation of :class:`SimParams`.

Everything a user passes goes through :func:`make_params`, which broadcasts scalars to the
right shape and raises ``ValueError`` naming the field, the bad value and the allowed
range, so nothing invalid reaches ``jit`` (where it would become a silent NaN).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from orpr_jax.sim.types import SimConfig, SimParams

_INF = float("inf")


@dataclasses.dataclass(frozen=True)
class _Field:
    shape: str  # comma-separated symbols: R rows, W warehouses, L max lead time, M ring,
    # H history, T any length >= 1, C rows or 1, K any length >= 2; "" = scalar.
    integer: bool
    low: float
    high: float
    default: Any
    low_open: bool = False
    high_open: bool = False


_FIELDS: dict[str, _Field] = {
    "holding_cost": _Field("R", False, 0.0, _INF, 1.0),
    "penalty_cost": _Field("R", False, 0.0, _INF, 9.0),
    "fixed_order_cost": _Field("R", False, 0.0, _INF, 0.0),
    "purchase_cost": _Field("R", False, 0.0, _INF, 0.0),
    "review_period": _Field("R", True, 1, 365, 1),
    "review_offset": _Field("R", True, 0, 364, 0),
    "lead_time": _Field("R", True, 1, _INF, 1),
    "lead_time_cdf": _Field("R,L", False, 0.0, 1.0, None),
    "moq": _Field("R", False, 0.0, _INF, 0.0),
    "case_pack": _Field("R", False, 1.0, _INF, 1.0),
    "max_order": _Field("R", False, 0.0, _INF, 1e9),
    "warehouse": _Field("R", True, 0, _INF, 0),
    "capacity": _Field("W", False, 0.0, _INF, 1e12),
    "category": _Field("R", True, 0, _INF, 0),
    "initial_on_hand": _Field("R", False, 0.0, _INF, 0.0),
    "initial_pipeline": _Field("M,R", False, 0.0, _INF, 0.0),
    "initial_sales_history": _Field("H,R", False, 0.0, _INF, None),
    "demand_trace": _Field("T,R", False, 0.0, _INF, None),
    "demand_cdf": _Field("C,K", False, 0.0, 1.0, None),
    "base_demand": _Field("R", False, 0.0, _INF, 5.0),
    "dispersion": _Field("R", False, 0.0, _INF, 10.0, low_open=True),
    "weekly": _Field("R,7", False, 0.0, _INF, 1.0),
    "yearly_amplitude": _Field("R", False, 0.0, 1.0, 0.0),
    "yearly_phase": _Field("R", False, -_INF, _INF, 0.0, low_open=True, high_open=True),
    "trend": _Field("R", False, -_INF, _INF, 0.0, low_open=True, high_open=True),
    "zero_prob": _Field("R", False, 0.0, 1.0, 0.0, high_open=True),
    "promo_uplift": _Field("R", False, 0.0, _INF, 1.0),
    "promo_calendar": _Field("T,R", False, 0.0, 1.0, 0.0),
    "start_day_of_year": _Field("", True, 0, 364, 0),
    "start_day_of_week": _Field("", True, 0, 6, 0),
    "temperature": _Field("", False, 0.0, _INF, 1.0, low_open=True),
}


def _range_text(f: _Field) -> str:
    lo = "(" if f.low_open else "["
    hi = ")" if f.high_open or f.high == _INF else "]"
    kind = "integers" if f.integer else "finite numbers"
    return f"{kind} in {lo}{f.low}, {f.high}{hi}"


def _resolve_shape(name: str, spec: str, config: SimConfig, value: np.ndarray) -> tuple:
    if spec == "":
        return ()
    dims = {
        "R": config.num_rows,
        "W": config.num_warehouses,
        "L": config.max_lead_time,
        "M": config.ring_size,
        "H": config.history_length,
    }
    symbols = spec.split(",")
    shape = []
    for axis, sym in enumerate(symbols):
        if sym in dims:
            shape.append(dims[sym])
        elif sym.isdigit():
            shape.append(int(sym))
        elif value.ndim == 0:  # a scalar fills a free axis of length 1
            shape.append(1)
        else:  # free length: taken from the value
            if value.ndim != len(symbols):
                raise ValueError(
                    f"{name} has shape {value.shape}; expected {len(symbols)} axes "
                    f"({spec.replace('T', 'days').replace('K', 'support')})"
                )
            n = value.shape[axis]
            if sym == "C" and n not in (1, config.num_rows):
                raise ValueError(
                    f"{name} has {n} rows; expected 1 or num_rows={config.num_rows}"
                )
            if sym == "K" and n < 2:
                raise ValueError(f"{name} has support length {n}; expected >= 2")
            if sym == "T" and n < 1:
                raise ValueError(f"{name} has {n} days; expected >= 1")
            shape.append(n)
    return tuple(shape)


def _check_field(name: str, f: _Field, config: SimConfig, raw) -> np.ndarray:
    try:
        value = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}={raw!r} is not numeric") from err
    shape = _resolve_shape(name, f.shape, config, value)
    try:
        value = np.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(
            f"{name} has shape {value.shape}; expected {shape} "
            f"({f.shape or 'scalar'}) or a scalar that broadcasts to it"
        ) from None
    bad = ~np.isfinite(value) if not (f.low_open and f.low == -_INF) else np.isnan(value)
    lo_bad = value <= f.low if f.low_open else value < f.low
    hi_bad = value >= f.high if (f.high_open and f.high != _INF) else value > f.high
    bad = bad | lo_bad | hi_bad
    if f.integer:
        bad = bad | (np.round(value) != value)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f" at index {idx}" if idx else ""
        raise ValueError(
            f"{name}={value[idx].item()!r}{where} is not allowed; expected {_range_text(f)}"
        )
    return value


def make_params(config: SimConfig, dtype=jnp.float32, **fields) -> SimParams:
    """Builds validated :class:`SimParams` for ``config``.

    Scalars broadcast to their field's shape; omitted fields take defaults (unit holding
    cost, penalty 9, lead time 1, no MOQ/case pack/capacity limits, Poisson(5) demand).
    ``lead_time_probs`` (``[R, max_lead_time]`` or ``[max_lead_time]``, probabilities of
    L = 1..max_lead_time) may be given instead of ``lead_time_cdf``.

    Args:
        config: the static configuration the params are for.
        dtype: float dtype of the float fields.
        **fields: any :class:`SimParams` field, plus ``lead_time_probs``.

    Returns:
        Validated params on the default device.

    Raises:
        ValueError: an unknown field, a wrong shape, or a value out of range (the message
            names the field, the value and the allowed range).
    """
    fields = dict(fields)
    unknown = set(fields) - set(_FIELDS) - {"lead_time_probs"}
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)} "
            "and lead_time_probs"
        )
    lmax = config.max_lead_time
    if "lead_time_probs" in fields:
        if "lead_time_cdf" in fields:
            raise ValueError("give lead_time_probs or lead_time_cdf, not both")
        fields["lead_time_cdf"] = lead_time_cdf_from_probs(fields.pop("lead_time_probs"), lmax)
    if config.lead_time_mode == "shared":
        lt = np.asarray(fields.get("lead_time", 1))
        if lt.ndim != 0 and not (lt.size and np.all(lt == lt.flat[0])):
            raise ValueError(
                f"lead_time has shape {lt.shape} with different values; lead_time_mode="
                "'shared' takes one lead time for all rows (use 'per_row')"
            )
    out: dict[str, Any] = {}
    for name, f in _FIELDS.items():
        raw = fields.get(name, f.default)
        if raw is None:
            raw = _default_array(name, config, fields)
        if name == "lead_time" and config.lead_time_mode == "shared":
            value = _check_field(name, dataclasses.replace(f, shape=""), config,
                                 np.asarray(raw).reshape(-1)[0])
        else:
            value = _check_field(name, f, config, raw)
        np_dtype = np.int32 if f.integer else np.dtype(dtype)
        out[name] = value.astype(np_dtype)
    _check_relations(config, out)
    return SimParams(**{k: jnp.asarray(v) for k, v in out.items()})


def _default_array(name: str, config: SimConfig, fields: dict) -> np.ndarray:
    r = config.num_rows
    if name == "lead_time_cdf":
        # Point mass at the fixed lead time (used for moments when mode is not stochastic).
        lt = np.broadcast_to(np.asarray(fields.get("lead_time", 1), float), (r,))
        lt = np.clip(np.nan_to_num(lt), 1, config.max_lead_time)
        ls = np.arange(1, config.max_lead_time + 1)
        return (ls[None, :] >= lt[:, None]).astype(np.float64)
    if name == "initial_sales_history":
        mean = np.broadcast_to(np.asarray(fields.get("base_demand", 5.0), float), (r,))
        return np.broadcast_to(np.round(mean)[None, :], (config.history_length, r))
    if name == "demand_trace":
        return np.zeros((1, r))
    if name == "demand_cdf":
        from orpr_jax.sim.demand import poisson_cdf_table

        return poisson_cdf_table(np.asarray(fields.get("base_demand", 5.0))).astype(float)
    raise AssertionError(name)


def lead_time_cdf_from_probs(probs, max_lead_time: int) -> np.ndarray:
    """CDF ``[R, max_lead_time]`` from probabilities of L = 1..max_lead_time.

    Raises:
        ValueError: negative or non-finite probabilities, a row not summing to 1, or the
            wrong number of columns.
    """
    p = np.atleast_2d(np.asarray(probs, dtype=np.float64))
    if p.shape[-1] != max_lead_time:
        raise ValueError(
            f"lead_time_probs has {p.shape[-1]} columns; expected max_lead_time="
            f"{max_lead_time} (probabilities of L = 1..{max_lead_time})"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        bad = p[~np.isfinite(p) | (p < 0)][0]
        raise ValueError(
            f"lead_time_probs={bad.item()!r} is not allowed; expected values in [0, 1]"
        )
    sums = p.sum(axis=-1)
    if np.any(np.abs(sums - 1.0) > 1e-6):
        i = int(np.argmax(np.abs(sums - 1.0)))
        raise ValueError(f"lead_time_probs row {i} sums to {float(sums.flat[i])!r}; expected 1")
    cdf = np.minimum(np.cumsum(p / sums[..., None], axis=-1), 1.0)
    cdf[..., -1] = 1.0
    return cdf


def _check_relations(config: SimConfig, v: dict) -> None:
    lt = v["lead_time"]
    if np.any(lt > config.max_lead_time):
        bad = int(np.max(lt))
        raise ValueError(
            f"lead_time={bad} is not allowed; expected integers in [1, max_lead_time="
            f"{config.max_lead_time}]"
        )
    off_bad = v["review_offset"] >= v["review_period"]
    if np.any(off_bad):
        i = int(np.argmax(off_bad))
        raise ValueError(
            f"review_offset={int(v['review_offset'][i])} at row {i} is not allowed; "
            f"expected integers in [0, review_period={int(v['review_period'][i])})"
        )
    if np.any(v["warehouse"] >= config.num_warehouses):
        bad = int(np.max(v["warehouse"]))
        raise ValueError(
            f"warehouse={bad} is not allowed; expected integers in [0, num_warehouses="
            f"{config.num_warehouses})"
        )
    cdf = v["lead_time_cdf"]
    if config.lead_time_mode == "stochastic":
        if np.any(np.diff(cdf, axis=1) < 0) or np.any(np.abs(cdf[:, -1] - 1.0) > 1e-6):
            raise ValueError(
                "lead_time_cdf must be non-decreasing along lead times with last column 1"
            )
    dcdf = v["demand_cdf"]
    if config.demand_mode == "table":
        if np.any(np.diff(dcdf, axis=1) < 0) or np.any(np.abs(dcdf[:, -1] - 1.0) > 1e-6):
            raise ValueError(
                "demand_cdf must be non-decreasing along the support with last column 1"
            )
    if config.use_max_order and config.use_moq:
        bad = v["max_order"] < v["moq"]
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(
                f"max_order={float(v['max_order'][i])} at row {i} is not allowed; expected "
                f">= moq={float(v['moq'][i])}"
            )
