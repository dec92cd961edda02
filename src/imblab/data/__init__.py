"""Data layer: every loader returns a validated :class:`imblab.data.dataset.Dataset`.

A data set has float64 features, a 0/1 ``target`` (1 = the positive, rare class) and optional timestamps
for time-ordered splits; problems the user can fix raise :class:`imblab.errors.ImblabError` with a message
that says what to do. One concept per module, imported from that module (nothing is re-exported here):

* :mod:`imblab.data.dataset` -- ``Dataset`` (fingerprint, validation) and ``TARGET_NAME``;
* :mod:`imblab.data.secom` -- ``load_secom``: UCI SECOM, local or a verified, cached download;
* :mod:`imblab.data.table` -- ``load_table``: any CSV / Parquet file with a binary target;
* :mod:`imblab.data.synthetic` -- ``make_synthetic``: an imbalanced ``make_classification`` problem.
"""
