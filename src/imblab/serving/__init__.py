"""Using a frozen model: batch-score files (``batch``) and serve it over REST (``server``).

The server is imblab's own small ASGI app with MLflow's ``/invocations`` protocol: ``server`` loads the
model and runs uvicorn, ``app`` routes requests and shapes every error, ``protocol`` reads a body into a
table and params (``numeric_rows``: a large all-numeric JSON batch without a Python object per cell),
``scoring`` asks the pyfunc and writes the answer. A frozen model answers ``decision``
and ``probability`` per row; rows that do not match its feature columns are refused with the reason
(``FrozenModel.check_columns``), an HTTP 400 when served.
"""
