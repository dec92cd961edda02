"""Multi-class decision policies: offsets chosen on validation raise balanced accuracy over argmax."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from imblab.errors import ImblabError
from imblab.panel.baselines import LGBMLags
from imblab.panel.decision import ArgmaxPolicy, LogitOffsetPolicy, decide, objective_score
from imblab.panel.examples import Examples, person_split
from imblab.panel.metrics import class_metrics


def _imbalanced(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with priors 15/70/15% and calibrated logits (log prior + a weak per-class signal)."""
    rng = np.random.default_rng(seed)
    prior = np.array([0.15, 0.7, 0.15])
    y = rng.choice(3, p=prior, size=n)
    logits = np.log(prior) + 1.2 * np.eye(3)[y] + rng.normal(size=(n, 3))
    return y, logits


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("objective", ["balanced_accuracy", "macro_f1"])
def test_objective_score_equals_scikit_learn(objective: str) -> None:
    rng = np.random.default_rng(0)
    for n, k in [(50, 3), (7, 4), (200, 2)]:
        y, pred = rng.integers(0, k - 1, size=n), rng.integers(0, k, size=n)  # class k-1 never in y
        ours = objective_score(y, pred, k, objective)
        theirs = (
            balanced_accuracy_score(y, pred)
            if objective == "balanced_accuracy"
            else f1_score(y, pred, labels=list(range(k)), average="macro", zero_division=0)
        )
        assert ours == pytest.approx(theirs)


def test_offsets_raise_balanced_accuracy_on_a_new_draw() -> None:
    y_val, logits_val = _imbalanced(3000, seed=1)
    y_test, logits_test = _imbalanced(3000, seed=2)
    policy = LogitOffsetPolicy()
    offsets = policy.choose(y_val, logits_val)
    assert offsets[1] == 0 and offsets[0] > 0.5 and offsets[2] > 0.5  # the small classes get pushed up
    argmax_test = balanced_accuracy_score(y_test, ArgmaxPolicy().decide(logits_test))
    tuned_test = balanced_accuracy_score(y_test, policy.decide(logits_test, offsets))
    assert tuned_test > argmax_test + 0.05, (argmax_test, tuned_test)


@pytest.mark.parametrize("objective", ["balanced_accuracy", "macro_f1"])
def test_offsets_never_lower_the_validation_score(objective: str) -> None:
    policy = LogitOffsetPolicy(objective=objective)
    for seed in range(25):
        rng = np.random.default_rng(seed)
        n, k = int(rng.integers(5, 300)), int(rng.integers(2, 5))
        y = rng.integers(0, k, size=n)
        logits = rng.normal(size=(n, k)) + rng.normal() * np.eye(k)[y]
        offsets = policy.choose(y, logits)
        assert objective_score(y, decide(logits, offsets), k, objective) >= objective_score(
            y, logits.argmax(axis=1), k, objective
        )
        assert offsets[(k - 1) // 2] == 0
        np.testing.assert_array_equal(offsets, policy.choose(y, logits))  # deterministic


def test_offset_policy_on_lgbm_lags_of_the_synthetic_panel(synthetic_examples: Examples) -> None:
    """The imbalanced synthetic case end to end: argmax under-predicts the small classes; offsets chosen on
    the validation persons do not lower validation balanced accuracy and raise it on the test persons."""
    ex = synthetic_examples
    train, val, test = (ex.of_persons(p) for p in person_split(ex, seed=0))
    model = LGBMLags().fit(train, val)
    lv, lt = model.predict(val).logits, model.predict(test).logits
    policy = LogitOffsetPolicy()
    offsets = policy.choose(val.y_cls, lv)
    names = ex.class_names

    def bacc(y: np.ndarray, pred: np.ndarray) -> float:
        return class_metrics(y, pred, names)["class_balanced_accuracy"]

    assert bacc(val.y_cls, policy.decide(lv, offsets)) >= bacc(val.y_cls, lv.argmax(axis=1))
    assert bacc(test.y_cls, policy.decide(lt, offsets)) > bacc(test.y_cls, lt.argmax(axis=1)) + 0.05


def test_ties_go_to_the_smaller_offsets() -> None:
    y = np.array([0, 1, 2, 1, 1])
    logits = 10 * np.eye(3)[y]  # argmax is already perfect; every offset in (-10, 10) ties
    np.testing.assert_array_equal(LogitOffsetPolicy().choose(y, logits), [0, 0, 0])
    grid = np.arange(-30, 31) / 10
    # Two identical rows of different classes: no offset changes the score, so none moves.
    y = np.array([0, 1])
    logits = np.array([[0.0, 1.0, -5.0], [0.0, 1.0, -5.0]])
    np.testing.assert_array_equal(LogitOffsetPolicy(grid=grid).choose(y, logits), [0, 0, 0])
    # Pushing class 0 by 1 to 3 gains the same; the smallest wins (argmax ties go to the lower class).
    y = np.array([0, 1, 1])
    logits = np.array([[0.0, 1.0, -5.0], [0.0, 1.0, -5.0], [-3.0, 1.0, -5.0]])
    np.testing.assert_array_equal(LogitOffsetPolicy(grid=grid).choose(y, logits), [1.0, 0, 0])


def test_reference_class_and_decide() -> None:
    y, logits = _imbalanced(500, seed=3)
    offsets = LogitOffsetPolicy(reference=0).choose(y, logits)
    assert offsets[0] == 0 and offsets[1] < 0  # same effect, expressed against class 0
    np.testing.assert_array_equal(decide(logits, np.array([0.0, 0.0, 100.0])), np.full(500, 2))
    np.testing.assert_array_equal(ArgmaxPolicy().choose(y, logits), np.zeros(3))
    np.testing.assert_array_equal(ArgmaxPolicy().decide(logits), logits.argmax(axis=1))


def test_bad_policy_inputs_are_clear_errors() -> None:
    with pytest.raises(ImblabError, match=r"objective must be one of"):
        LogitOffsetPolicy(objective="accuracy")
    with pytest.raises(ImblabError, match=r"includes 0"):
        LogitOffsetPolicy(grid=np.array([-1.0, 1.0]))
    with pytest.raises(ImblabError, match=r"one value per class"):
        decide(np.zeros((4, 3)), np.zeros(2))
    with pytest.raises(ImblabError, match=r"labels in 0..2"):
        LogitOffsetPolicy().choose(np.array([0, 3]), np.zeros((2, 3)))
    with pytest.raises(ImblabError, match=r"finite logits"):
        LogitOffsetPolicy().choose(np.array([0, 1]), np.array([[0.0, np.nan, 0.0]] * 2))
    with pytest.raises(ImblabError, match=r"reference class 5"):
        LogitOffsetPolicy(reference=5).choose(np.array([0, 1]), np.zeros((2, 3)))
