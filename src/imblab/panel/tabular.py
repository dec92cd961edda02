"""Fixed-width lag features from :class:`Examples`, for tree models (``lgbm_lags``).

Built only from an example's inputs (``seq``, ``lengths``, ``known``), so they inherit its no-leakage
guarantee. Missing values come back as NaN (LightGBM routes them itself), so the indicators are dropped.
"""

from __future__ import annotations

import numpy as np

from imblab.panel.examples import GAP, MISSING, TARGET, Examples, observed_mask


def lag_features(examples: Examples) -> tuple[np.ndarray, list[str]]:
    """(n, p) float64 features and their names (``:`` of channel names becomes ``_``), per example:

    * ``last_*``: the last earlier wave's features, regression target and class one-hot;
    * ``mean_*``: running means over the history (at most ``max_len`` waves) of the same and of the gaps;
      a class one-hot's mean is the share of earlier waves in that class;
    * ``change_<target>``: the last wave's regression target minus the one before (NaN with one wave);
    * ``n_waves``: the waves in the history (capped at ``max_len``);
    * ``known_*``: the known-in-advance values at t, and the gap from the last wave to t.
    """
    ex = examples
    n, max_len, _ = ex.seq.shape
    names = ex.seq_names
    seq = ex.seq.astype(np.float64)
    valid = np.arange(max_len)[None, :] < ex.lengths[:, None]
    seq = np.where(observed_mask(seq, names) & valid[..., None], seq, np.nan)
    keep = [j for j, s in enumerate(names) if not s.startswith(MISSING)]
    vals = seq[:, :, keep]
    kept = [names[j] for j in keep]

    rows = np.arange(n)
    last = vals[rows, ex.lengths - 1]
    seen = ~np.isnan(vals)
    count = seen.sum(axis=1)
    mean = np.where(count > 0, np.where(seen, vals, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    wage = kept.index(next(s for s in kept if s.startswith(TARGET)))
    before = vals[rows, np.maximum(ex.lengths - 2, 0), wage]
    change = np.where(ex.lengths >= 2, last[:, wage] - before, np.nan)

    known = ex.known.astype(np.float64)
    known = np.where(observed_mask(known, ex.known_names), known, np.nan)
    known_keep = [j for j, s in enumerate(ex.known_names) if not s.startswith(MISSING)]

    not_gap = [j for j, s in enumerate(kept) if s != GAP]  # the last gap is known_gap
    X = np.column_stack([last[:, not_gap], mean, change, ex.lengths, known[:, known_keep]])
    feature_names = [
        *(f"last_{kept[j]}" for j in not_gap),
        *(f"mean_{s}" for s in kept),
        f"change_{kept[wage]}",
        "n_waves",
        *(f"known_{ex.known_names[j]}" for j in known_keep),
    ]
    return X, [s.replace(":", "_") for s in feature_names]
