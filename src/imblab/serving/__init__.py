"""Using a frozen model: batch-score files (``batch``) and serve it over REST (``server``).

A frozen model answers ``decision`` and ``probability`` per row; rows that do not match its feature
columns are refused with the reason (``FrozenModel.check_columns``).
"""
