"""Host-array checks and helpers shared by the field test's estimators and its trial."""

from __future__ import annotations

from typing import Any

import numpy as np


def _bool_vector(name: str, value: Any, length: int, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (length,):
        raise ValueError(f"{name} has shape {arr.shape}; expected ({length},), one per {what}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isin(arr, (0, 1))):
            raise ValueError(f"{name} must be boolean (or 0/1); got dtype {arr.dtype}")
        arr = arr.astype(bool)
    return arr


def _real_array(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.any(np.isinf(arr)):
        raise ValueError(f"{name} contains {arr[np.isinf(arr)][0]!r}; expected finite values "
                         "(NaN marks a missing cell)")
    return arr



def _row_mean(panel: np.ndarray) -> np.ndarray:
    n = np.isfinite(panel).sum(axis=1)
    total = np.where(np.isfinite(panel), panel, 0.0).sum(axis=1)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)

