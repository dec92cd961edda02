"""Panel workload: from each person's earlier waves of a person-year panel, predict this wave's wage
(regression) and an imbalanced multi-class outcome (e.g. the hours band).

One concept per module, imported from that module (nothing is re-exported here):

* :mod:`imblab.panel.dataset` -- ``Panel``, ``PanelPrediction`` and ``validate``;
* :mod:`imblab.panel.table` -- ``load_panel_table`` (any CSV / Parquet panel) and ``panel_from_frame``;
* :mod:`imblab.panel.nlswork` -- ``load_nlswork``: NLS Young Women, sha256-verified, never downloaded;
* :mod:`imblab.panel.synthetic` -- ``make_panel_synthetic``: a panel with known structure, for fast tests;
* :mod:`imblab.panel.examples` -- ``Examples``, ``build_examples``, ``Standardizer``, ``person_split``;
* :mod:`imblab.panel.tabular` -- ``lag_features``: the lag / running-summary features of ``lgbm_lags``;
* :mod:`imblab.panel.baselines` -- ``Persistence`` and ``LGBMLags``;
* :mod:`imblab.panel.decision` -- ``ArgmaxPolicy`` and ``LogitOffsetPolicy`` (multi-class decisions);
* :mod:`imblab.panel.metrics` -- ``wage_metrics`` and ``class_metrics``;
* :mod:`imblab.panel.recurrent` -- ``RecurrentModel`` (``lstm`` / ``gru`` multi-task networks, PyTorch);
* :mod:`imblab.panel.training` -- the epoch loop, loss and validation logs behind ``RecurrentModel``;
* :mod:`imblab.panel.experiment` -- ``run_panel``: one tracked ``imblab panel`` run, end to end;
* :mod:`imblab.panel.frozen` -- ``PanelFrozenModel``: the frozen pyfunc (history rows in, next wave out).

The ``imblab panel`` command is :mod:`imblab.app.panel` (config root ``conf/panel``, typed by
:mod:`imblab.config.panel`). Not built yet: panel tuning (issue 9 continues).
"""
