"""Categorical feature columns inside the leakage-free pipeline (``data=table`` with text columns).

A data set with categorical (pandas ``category``) columns gets its pipeline adapted once, after loading
(:func:`for_features`); without them the pipeline is returned unchanged, so numeric data such as SECOM
runs exactly as before. The adapted pipeline::

    features: ColumnTransformer(numeric columns -> the configured preprocess steps,
                                categorical columns -> CategoryEncoder)      pandas output
    sampler:  as configured if it copes with categories (random over/under), SMOTE -> SMOTE-NC,
              anything that interpolates or measures distances on them (SMOTE-ENN, ADASYN, ...) refused
    encode:   one-hot of the categorical columns, for every model but LightGBM (which splits on
              pandas categories natively)
    model

Everything is learned in ``fit``, i.e. inside each training fold: the categories a fold's model knows are
those of its training rows. A category never seen in training (a new tool at prediction time) becomes
missing: LightGBM treats it as missing, the one-hot encoder as all zeros. Nothing crashes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC, RandomOverSampler
from imblearn.pipeline import Pipeline as ImbPipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.pipeline import Pipeline as SkPipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from imblab.data.categories import as_category_text, categorical_columns
from imblab.errors import ImblabError
from imblab.pipeline import MODEL_STEP, SAMPLER_STEP, base_pipeline, model_of, sampler_of

log = logging.getLogger(__name__)

FEATURES_STEP = "features"
ENCODE_STEP = "encode"
CATEGORICAL = "categorical"
# Samplers that only copy or drop whole rows, or were built for categories: they pass unchanged.
CATEGORY_SAFE = (RandomOverSampler, RandomUnderSampler, SMOTENC, SMOTEN)


class CategoryEncoder(TransformerMixin, BaseEstimator):
    """Categorical columns -> pandas ``category`` columns with the categories of the training rows.

    Values are normalised to text (``imblab.data.categories``), so a category arrives the same way from a
    Parquet file, a CSV or a JSON request; a category unknown at fit time becomes NaN.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> CategoryEncoder:
        frame = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.categories_ = {c: sorted(as_category_text(frame[c]).unique()) for c in frame.columns}
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "categories_")
        frame = pd.DataFrame(X)
        out = {}
        for c, known in self.categories_.items():
            text = as_category_text(frame[c])
            out[c] = pd.Categorical(text.where(text.isin(known)), categories=known)
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "categories_")
        return self.feature_names_in_.copy()


def _one_hot() -> ColumnTransformer:
    """One-hot of the category columns after the sampler (dense: SECOM-sized tables, linear models)."""
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [("onehot", encoder, make_column_selector(dtype_include="category"))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def _is_lightgbm(model: Any) -> bool:
    return type(model).__module__.split(".")[0] == "lightgbm"


def _categorical_sampler(sampler: Any, sampler_name: str, columns: list[str]) -> Any:
    """The sampler to use with categorical columns: itself, its SMOTE-NC form, or a clear refusal."""
    if sampler is None or isinstance(sampler, CATEGORY_SAFE):
        return sampler
    if type(sampler) is SMOTE:
        # SMOTE-NC interpolates the numeric columns and takes the most frequent category of the
        # neighbours for the categorical ones; "auto" finds them as the pandas category columns.
        params = sampler.get_params()
        log.info("sampler %r: SMOTE-NC for the categorical columns %s", sampler_name, columns)
        return SMOTENC(
            categorical_features="auto",
            sampling_strategy=params["sampling_strategy"],
            random_state=params["random_state"],
            k_neighbors=params["k_neighbors"],
        )
    shown = ",".join(columns[:10])
    raise ImblabError(
        f"sampler {sampler_name!r} ({type(sampler).__name__}) cannot resample the categorical feature "
        f"columns {columns[:10]}: it interpolates or measures distances on them. Use sampler=smote "
        "(applied as SMOTE-NC to these columns), sampler=smotenc, random_over, random_under, class_weight "
        "or none; or "
        f"drop the columns (data.drop_columns=[{shown}])."
    )


def for_features(pipeline: Any, X: pd.DataFrame, sampler_name: str) -> Any:
    """``pipeline`` (unfitted) adapted to the columns of ``X``; unchanged when none is categorical."""
    columns = categorical_columns(X)
    plain = base_pipeline(pipeline)
    sampler = sampler_of(plain)
    if not columns:
        if isinstance(sampler, SMOTENC):
            raise ImblabError(
                f"sampler {sampler_name!r} (SMOTE-NC) needs categorical feature columns and the data has "
                "none; use sampler=smote"
            )
        return pipeline
    if plain is not pipeline:
        raise ImblabError("internal: adapt the pipeline to categorical columns before calibrating it")
    numeric = [str(c) for c in X.columns if str(c) not in set(columns)]
    pre = [(n, clone(s)) for n, s in pipeline.steps if n not in (SAMPLER_STEP, MODEL_STEP)]
    parts: list[tuple[str, Any, list[str]]] = [(CATEGORICAL, CategoryEncoder(), columns)]
    if numeric:
        parts.insert(0, ("numeric", SkPipeline(pre) if pre else "passthrough", numeric))
    features = ColumnTransformer(parts, verbose_feature_names_out=False).set_output(transform="pandas")
    steps: list[tuple[str, Any]] = [(FEATURES_STEP, features)]
    adapted = _categorical_sampler(sampler, sampler_name, columns)
    if adapted is not None:
        steps.append((SAMPLER_STEP, clone(adapted)))
    model = clone(model_of(pipeline))
    if not _is_lightgbm(model):
        steps.append((ENCODE_STEP, _one_hot()))
    steps.append((MODEL_STEP, model))
    return ImbPipeline(steps)


def categorical_inputs(fitted: Any) -> list[str]:
    """The categorical input columns a fitted (frozen, possibly calibrated) pipeline expects as text."""
    pipeline = fitted
    members = getattr(fitted, "calibrated_classifiers_", None)
    if members:
        pipeline = members[0].estimator
    steps = getattr(pipeline, "steps", None)
    if not steps or steps[0][0] != FEATURES_STEP:
        return []
    features = steps[0][1]
    for name, _, cols in getattr(features, "transformers_", []):
        if name == CATEGORICAL:
            return [str(c) for c in cols]
    return []
