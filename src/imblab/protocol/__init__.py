"""The leakage-free protocol: holdout split (``split``), out-of-fold scores and the final fit (``cv``),
and the cache of fits that do not depend on the threshold policy (``cache``)."""
