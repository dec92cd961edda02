"""The team stack (``imblab team-server``, ``make server``): a private PostgreSQL cluster, an artifact
store and an MLflow tracking server on it, for a lab that shares one tracking server and its studies.

    processes.py   long-lived servers in their own process groups, found again by pid and start time
    postgres.py    the cluster: initdb once, start, the ``imblab`` role and its databases, .pgpass
    team.py        start/stop/status of the whole stack, with a state file under its directory
"""
