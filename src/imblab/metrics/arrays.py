"""Elementwise helpers shared by the scalar metrics, the threshold sweep and the bootstrap."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def safe_div(num: ArrayLike, den: ArrayLike, empty: float = 0.0) -> NDArray[np.float64]:
    """Elementwise ``num / den`` with ``empty`` where ``den == 0``.

    No warnings, scalars and arrays alike: imblab's convention that a ratio with a zero denominator is
    0.0 (scikit-learn's ``zero_division=0``) unless the caller says NaN is the honest value.
    """
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out
