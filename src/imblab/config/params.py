"""Estimator parameters checked when the pipeline is built, named by their config key.

scikit-learn and imbalanced-learn estimators declare their valid values (``_parameter_constraints``) and
check them only in ``fit``: a bad override (``model.estimator.C=-1``) would fail minutes into a run, inside
a joblib worker, as a traceback. Checking each estimator (and each nested one, e.g. SMOTE-ENN's ``smote``)
here, with scikit-learn's own validator, fails before any run is opened with the config key in the message.
LightGBM declares no constraints, so its documented ranges are written down below in the same terms.
"""

from __future__ import annotations

import re
from numbers import Integral, Real
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError, validate_parameter_constraints

from imblab.errors import ImblabError

# LightGBM's documented constraints (docs/Parameters.rst) under the scikit-learn API's parameter names.
# n_estimators: LightGBM allows 0 iterations, but its scikit-learn wrapper refuses to fit zero trees.
LIGHTGBM_CONSTRAINTS: dict[str, list[Any]] = {
    "n_estimators": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "num_leaves": [Interval(Integral, 2, 131072, closed="both")],
    "max_depth": [Integral],
    "min_child_samples": [Interval(Integral, 0, None, closed="left")],
    "min_child_weight": [Interval(Real, 0, None, closed="left")],
    "min_split_gain": [Interval(Real, 0, None, closed="left")],
    "subsample": [Interval(Real, 0, 1, closed="right")],
    "subsample_freq": [Integral],
    "subsample_for_bin": [Interval(Integral, 1, None, closed="left")],
    "colsample_bytree": [Interval(Real, 0, 1, closed="right")],
    "reg_alpha": [Interval(Real, 0, None, closed="left")],
    "reg_lambda": [Interval(Real, 0, None, closed="left")],
    "n_jobs": [Integral, None],
}

# scikit-learn's message: "The 'C' parameter of LogisticRegression must be <rule>. Got -1 instead."
_SKLEARN_MESSAGE = re.compile(r"The '[^']+' parameter of .+? must be (?P<rule>.+)\. Got .+ instead\.$", re.S)


def constraints_of(estimator: Any) -> dict[str, list[Any]]:
    """The estimator's declared parameter constraints (LightGBM's from the table above); {} if none."""
    declared = getattr(estimator, "_parameter_constraints", None)
    if isinstance(declared, dict):
        return declared
    if type(estimator).__module__.split(".")[0] == "lightgbm":
        return LIGHTGBM_CONSTRAINTS
    return {}


def check_params(estimator: Any, key: str) -> None:
    """Validate ``estimator``'s parameters and those of every estimator nested in it.

    ``key`` is the config path of the estimator (``model.estimator``); a bad value raises an
    ``ImblabError`` such as ``model.estimator.n_estimators must be an int in the range [1, inf), got 0``.
    """
    if not hasattr(estimator, "get_params"):
        return
    params = estimator.get_params(deep=False)
    constraints = constraints_of(estimator)
    for name, value in params.items():
        rules = constraints.get(name)
        if rules is None:
            continue
        try:
            validate_parameter_constraints({name: rules}, {name: value}, caller_name=type(estimator).__name__)
        except InvalidParameterError as exc:
            raise ImblabError(_message(f"{key}.{name}", value, str(exc))) from None
    for name, value in params.items():
        if isinstance(value, BaseEstimator):
            check_params(value, f"{key}.{name}")


def _message(key: str, value: Any, sklearn_message: str) -> str:
    """scikit-learn's rule under imblab's config key (its whole message if the wording ever changes)."""
    match = _SKLEARN_MESSAGE.match(sklearn_message)
    return f"{key} must be {match['rule']}, got {value!r}" if match else f"{key}: {sklearn_message}"
