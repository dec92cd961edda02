"""A synthetic person-year panel with KNOWN structure, for fast tests and demos of the panel models.

For person i at wave t (``year``, irregular gaps of 1-3 years, so ``d`` = years since the previous wave):

* ``x``      = rho_x**d * x_prev + sqrt(1 - rho_x**(2d)) * N(0, 1)      (stationary N(0, 1) feature)
* ``u``      = rho**d * u_prev + sqrt(1 - rho**(2d)) * N(0, sigma_u**2)  (AR(1) wage shock)
* ``wage``   = 2 + alpha_i + age_coef * (age - 30) + beta * x + u + N(0, sigma_e**2),  alpha_i ~ N(0, 0.3**2)
* ``band``   = cut(c_i + 0.8 * x + N(0, 1)) at the quantiles that give ``class_shares`` (c_i ~ N(0, 1)),
  so the middle class dominates (as the hours band does) and a person's class persists through c_i.

``age`` is known in advance; ``noise`` is an irrelevant feature; ``x`` and ``noise`` miss ``missing_rate`` of
their values. A share ``single_wave_share`` of persons has one wave (they give no example). Persistence
misses the mean reversion of ``u`` and the age trend; lags, running means and ``age`` recover them.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
import pandas as pd

from imblab.errors import ImblabError
from imblab.panel.dataset import Panel, validate

SIGMA_ALPHA, SIGMA_U, SIGMA_E, RHO_X, CLASS_LOADING = 0.3, 0.25, 0.15, 0.8, 0.8


def make_panel_synthetic(
    n_persons: int = 400,
    max_waves: int = 8,
    seed: int = 0,
    single_wave_share: float = 0.1,
    class_shares: Sequence[float] = (0.2, 0.65, 0.15),
    rho: float = 0.6,
    beta: float = 0.3,
    age_coef: float = 0.02,
    missing_rate: float = 0.05,
) -> Panel:
    """A panel of ``n_persons`` with 1..``max_waves`` irregular waves each; see the module docstring."""
    shares = np.asarray(class_shares, dtype=np.float64)
    if len(shares) < 2 or (shares <= 0).any() or abs(shares.sum() - 1) > 1e-9:
        raise ImblabError(
            f"class_shares must be two or more positive shares summing to 1, got {class_shares}."
        )
    if max_waves < 2 or n_persons < 1:
        raise ImblabError(f"need max_waves >= 2 and n_persons >= 1, got {max_waves} and {n_persons}.")
    if not 0 <= single_wave_share < 1 or not 0 <= missing_rate < 1 or not 0 <= rho < 1:
        raise ImblabError(
            "single_wave_share, missing_rate and rho must be in [0, 1), got "
            f"{single_wave_share}, {missing_rate} and {rho}."
        )
    rng = np.random.default_rng(seed)
    n, w = n_persons, max_waves
    n_waves = np.where(rng.random(n) < single_wave_share, 1, rng.integers(2, w + 1, size=n))
    gaps = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1], size=(n, w))
    gaps[:, 0] = 0
    year = 2000 + rng.integers(0, 4, size=(n, 1)) + np.cumsum(gaps, axis=1)
    age = rng.integers(18, 36, size=(n, 1)) + (year - year[:, :1])

    x, u = np.empty((n, w)), np.empty((n, w))
    x[:, 0], u[:, 0] = rng.normal(size=n), rng.normal(0, SIGMA_U, size=n)
    for t in range(1, w):
        rx, ru = RHO_X ** gaps[:, t], rho ** gaps[:, t]
        x[:, t] = rx * x[:, t - 1] + np.sqrt(1 - rx**2) * rng.normal(size=n)
        u[:, t] = ru * u[:, t - 1] + np.sqrt(1 - ru**2) * rng.normal(0, SIGMA_U, size=n)
    alpha = rng.normal(0, SIGMA_ALPHA, size=(n, 1))
    wage = 2 + alpha + age_coef * (age - 30) + beta * x + u + rng.normal(0, SIGMA_E, size=(n, w))
    latent = rng.normal(size=(n, 1)) + CLASS_LOADING * x + rng.normal(size=(n, w))
    latent_sd = np.sqrt(2 + CLASS_LOADING**2)
    cuts = [NormalDist(0, latent_sd).inv_cdf(q) for q in np.cumsum(shares)[:-1]]
    band = np.searchsorted(cuts, latent)

    keep = np.arange(w)[None, :] < n_waves[:, None]
    cols = {
        "person": np.repeat(np.arange(n), w).reshape(n, w),
        "year": year,
        "age": age.astype(np.float64),
        "x": x,
        "noise": rng.normal(size=(n, w)),
        "wage": wage,
        "band": band,
    }
    frame = pd.DataFrame({k: v[keep] for k, v in cols.items()})
    for c in ("x", "noise"):
        frame.loc[rng.random(len(frame)) < missing_rate, c] = np.nan
    names = ["low", "middle", "high"] if len(shares) == 3 else [f"class {k}" for k in range(len(shares))]
    panel = Panel(
        name="panel_synthetic",
        frame=frame,
        id="person",
        time="year",
        features=["x", "noise"],
        known=["age"],
        regression_target="wage",
        class_target="band",
        class_names=names,
    )
    return validate(panel)
