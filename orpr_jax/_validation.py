"""Small host-side validation helpers shared by the modules that take user arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_float_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array, or ValueError naming ``name`` if it is not numeric."""
    arr = np.asarray(value)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise ValueError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def check_int(name: str, value: Any, low: int) -> None:
    """Raises ValueError naming ``name`` unless ``value`` is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} is not allowed; it must be an integer >= {low}")
