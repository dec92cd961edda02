"""Comparing a sweep's runs and reporting it; figures shared by runs and comparisons.

``comparison``: a sweep's stored scores and the bootstrap table; ``render``: tables and text;
``figures``: matplotlib figures of one run or of a comparison; ``files``: the report on disk and on
the sweep's parent run.
"""
