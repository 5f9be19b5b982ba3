"""Argument checks shared by the exact solvers; each raises a ``ValueError`` naming the
argument, its value and what is allowed."""

from __future__ import annotations

import math

import numpy as np


def _check_lead_time(lead_time) -> None:
    if isinstance(lead_time, bool) or not isinstance(lead_time, int) or lead_time < 1:
        raise ValueError(f"lead_time={lead_time!r} is not allowed; expected an integer >= 1")


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number > 0")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number > 0")
    return float(value)


def _check_optional_int(name: str, value, low: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; expected None or an integer >= {low}")


def _check_iters(max_iters) -> None:
    if isinstance(max_iters, bool) or not isinstance(max_iters, int) or max_iters < 1:
        raise ValueError(f"max_iters={max_iters!r} is not allowed; expected an integer >= 1")


def _validate(lead_time, p, mu, h, tol, max_iters) -> tuple[float, float, float, float]:
    _check_lead_time(lead_time)
    p = _check_positive("lost_sales_cost", p)
    mu = _check_positive("demand_mean", mu)
    h = _check_positive("holding_cost", h)
    tol = _check_positive("tol", tol)
    _check_iters(max_iters)
    return p, mu, h, tol
