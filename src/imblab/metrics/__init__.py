"""Metrics for imbalanced binary classification: pure numpy/scikit-learn, no tracking, no I/O.

One concept per module, imported from that module (nothing is re-exported here):

* :mod:`imblab.metrics.names` -- the metric-name registry: direction, kind, and parsing of
  ``test_<m>`` / ``cv_<m>`` names for tuning, promotion and comparison;
* :mod:`imblab.metrics.core` -- input validation, confusion counts, metrics at one threshold and at
  every candidate threshold;
* :mod:`imblab.metrics.costs` -- ``Costs`` and expected cost, net saving and ROI (scalar and vectorised);
* :mod:`imblab.metrics.bootstrap` -- test-set bootstrap resamples and metrics vectorised over them;
* :mod:`imblab.metrics.arrays` -- ``safe_div``, the zero-denominator convention.
"""
