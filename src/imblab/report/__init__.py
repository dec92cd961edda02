"""Comparing a sweep's runs and reporting it; figures shared by runs and comparisons.

``comparison``: a sweep's stored scores and the bootstrap table; ``render``: tables and text;
``figures``: matplotlib figures of one run or of a comparison; ``files``: the report on disk and on
the sweep's parent run. Panel runs (``imblab panel``): ``panel_runs`` (which runs, their stored test
predictions), ``panel_comparison`` (person-bootstrap CIs, paired differences, references),
``panel_render`` (text and tables), ``panel_figures`` (a run's and a comparison's plots) and
``panel_files`` (the panel report on disk).
"""
