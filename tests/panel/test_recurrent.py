"""The lstm/gru multi-task estimator on tiny synthetic panels: it learns, ignores padding, is reproducible,
early-stops to its best epoch, reports every metric, handles class imbalance, pickles, checks its inputs."""

from __future__ import annotations

import pickle
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imblab.errors import ImblabError  # noqa: E402
from imblab.panel.recurrent import ENCODERS, RecurrentModel  # noqa: E402

try:
    from imblab.panel.examples import Examples
except ModuleNotFoundError as missing:  # panel/examples.py is written in parallel: any look-alike will do
    if missing.name != "imblab.panel.examples":
        raise
    Examples = types.SimpleNamespace  # type: ignore[assignment,misc]

FAST = {"units1": 16, "units2": 8, "dropout": 0.0, "learning_rate": 1e-2, "batch_size": 64, "n_threads": 1}


@pytest.fixture(scope="module", autouse=True)
def panel_prediction_type() -> Iterator[None]:
    """A stand-in for imblab.panel.dataset.PanelPrediction while panel/dataset.py is not merged yet."""
    try:
        import imblab.panel.dataset  # noqa: F401
    except ModuleNotFoundError as missing:
        if missing.name != "imblab.panel.dataset":
            raise

        @dataclass
        class PanelPrediction:
            wage: np.ndarray
            logits: np.ndarray

        stub = types.ModuleType("imblab.panel.dataset")
        stub.PanelPrediction = PanelPrediction  # type: ignore[attr-defined]
        with pytest.MonkeyPatch.context() as mp:
            mp.setitem(sys.modules, "imblab.panel.dataset", stub)
            yield
        return
    yield


def make_examples(
    seq: np.ndarray,
    lengths: np.ndarray,
    known: np.ndarray,
    y_reg: np.ndarray,
    y_cls: np.ndarray,
    kind: Any = Examples,
) -> Any:
    """Examples of the contract; ``kind=types.SimpleNamespace`` for broken inputs that Examples may refuse."""
    n = len(lengths)
    return kind(
        seq=seq.astype(np.float32),
        lengths=lengths.astype(np.int64),
        known=known.astype(np.float32),
        y_reg=y_reg.astype(np.float64),
        y_cls=y_cls.astype(np.int64),
        last_reg=np.zeros(n),
        last_cls=np.zeros(n, dtype=np.int64),
        person=np.arange(n),
        time=np.ones(n, dtype=np.int64),
        seq_names=[f"s{i}" for i in range(seq.shape[2])],
        known_names=[f"k{i}" for i in range(known.shape[1])],
    )


def synthetic(n: int, seed: int, shares: tuple[float, ...] = (0.2, 0.65, 0.15), noise: float = 0.3) -> Any:
    """Wage = mean of seq feature 0 over the person's waves + known feature 0; class = band of the LAST
    wave's feature 1 (plus ``noise``), cut at the quantiles giving ``shares``."""
    rng = np.random.default_rng(seed)
    max_len, n_seq = 6, 3
    lengths = rng.integers(1, max_len + 1, n)
    seq = rng.normal(size=(n, max_len, n_seq))
    seq[np.arange(max_len)[None, :] >= lengths[:, None]] = 0.0
    known = rng.normal(size=(n, 2))
    y_reg = 2.0 + 1.5 * seq[:, :, 0].sum(1) / lengths + 0.5 * known[:, 0] + 0.1 * rng.normal(size=n)
    score = seq[np.arange(n), lengths - 1, 1] + noise * rng.normal(size=n)
    cuts = np.quantile(score, np.cumsum(shares)[:-1])
    return make_examples(seq, lengths, known, y_reg, np.digitize(score, cuts))


@pytest.fixture(scope="module")
def data() -> tuple[Any, Any]:
    return synthetic(600, seed=0), synthetic(300, seed=1)


@pytest.fixture(scope="module")
def fitted(data: tuple[Any, Any]) -> RecurrentModel:
    return RecurrentModel(max_epochs=8, **FAST).fit(*data)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_learns_the_synthetic_signal(data: tuple[Any, Any], cell: str) -> None:
    train, val = data
    pred = RecurrentModel(cell=cell, max_epochs=30, **FAST).fit(train, val).predict(val)
    rmse = np.sqrt(np.mean((pred.wage - val.y_reg) ** 2))
    mean_rmse = np.sqrt(np.mean((train.y_reg.mean() - val.y_reg) ** 2))
    assert rmse < 0.35 * mean_rmse  # 0.17-0.21 over seeds 0-4
    majority = np.bincount(val.y_cls).max() / len(val.y_cls)
    assert np.mean(pred.logits.argmax(1) == val.y_cls) > majority + 0.1
    assert pred.wage.shape == (300,) and pred.logits.shape == (300, 3)


def test_padding_and_batch_neighbours_do_not_change_a_prediction(
    fitted: RecurrentModel, data: tuple[Any, Any]
) -> None:
    val = data[1]
    base = fitted.predict(val)
    for fill in (0.0, 7.0):  # zeros as the contract pads, and junk that would show if padding were read
        extra = np.full((len(val.lengths), 4, val.seq.shape[2]), fill, dtype=np.float32)
        seq = np.concatenate([val.seq, extra], axis=1)
        seq[np.arange(seq.shape[1])[None, :] >= val.lengths[:, None]] = fill
        padded = fitted.predict(make_examples(seq, val.lengths, val.known, val.y_reg, val.y_cls))
        np.testing.assert_allclose(padded.wage, base.wage, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(padded.logits, base.logits, rtol=1e-5, atol=1e-6)
    for i in (0, 17, 123):  # alone, trimmed to its own length, instead of among 299 neighbours
        k = int(val.lengths[i])
        one = make_examples(
            val.seq[i : i + 1, :k], val.lengths[i : i + 1], val.known[i : i + 1], val.y_reg[:1], val.y_cls[:1]
        )
        alone = fitted.predict(one)
        np.testing.assert_allclose(alone.wage, base.wage[i : i + 1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(alone.logits, base.logits[i : i + 1], rtol=1e-5, atol=1e-6)


def test_a_seed_makes_two_fits_identical(data: tuple[Any, Any]) -> None:
    fits = [
        RecurrentModel(max_epochs=3, seed=seed, **{**FAST, "dropout": 0.3}).fit(*data) for seed in (7, 7, 8)
    ]
    preds = [m.predict(data[1]) for m in fits]
    assert fits[0].history_ == fits[1].history_
    np.testing.assert_array_equal(preds[0].logits, preds[1].logits)
    np.testing.assert_array_equal(preds[0].wage, preds[1].wage)
    assert not np.array_equal(preds[0].wage, preds[2].wage)


def test_fit_leaves_torch_threads_and_global_rng_alone(data: tuple[Any, Any]) -> None:
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    RecurrentModel(max_epochs=1, **{**FAST, "n_threads": 1 if threads > 1 else 2}).fit(*data)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), state)


def objective(model: RecurrentModel, val: Any) -> float:
    """val_objective recomputed from predict(): standardised wage MSE + plain cross-entropy."""
    pred = model.predict(val)
    mse = np.mean(((pred.wage - val.y_reg) / model.wage_std_) ** 2)
    log_p = torch.log_softmax(torch.as_tensor(pred.logits), dim=1).numpy()
    return float(mse - log_p[np.arange(len(val.y_cls)), val.y_cls].mean())


def test_early_stopping_restores_the_best_epoch() -> None:
    # 80 noisy training examples and a wide network at a high learning rate: validation loss turns up early.
    train, val = synthetic(80, seed=2, noise=1.0), synthetic(300, seed=3, noise=1.0)
    model = RecurrentModel(
        max_epochs=60, patience=4, **{**FAST, "units1": 64, "units2": 64, "learning_rate": 3e-2}
    )
    model.fit(train, val)
    losses = [logs["val_loss"] for logs in model.history_]
    assert model.epochs_run_ == len(model.history_) < 60  # stopped early
    assert model.best_epoch_ == int(np.argmin(losses)) == model.epochs_run_ - 1 - 4
    assert losses[-1] > losses[model.best_epoch_]
    # The weights in use are the best epoch's, not the last one's.
    assert objective(model, val) == pytest.approx(
        model.history_[model.best_epoch_]["val_objective"], rel=1e-5
    )


def test_on_epoch_gets_every_metric_and_its_exception_propagates(data: tuple[Any, Any]) -> None:
    seen: list[tuple[int, dict[str, float]]] = []
    RecurrentModel(max_epochs=2, **FAST).fit(*data, on_epoch=lambda epoch, logs: seen.append((epoch, logs)))
    assert [epoch for epoch, _ in seen] == [0, 1]
    names = {
        "train_loss",
        "val_loss",
        "val_objective",
        "val_wage_rmse",
        "val_class_accuracy",
        "val_class_balanced_accuracy",
        "val_class_macro_f1",
    }
    assert all(set(logs) == names and all(np.isfinite(list(logs.values()))) for _, logs in seen)

    class Pruned(Exception):
        pass

    def prune(epoch: int, logs: dict[str, float]) -> None:
        raise Pruned(epoch)

    model = RecurrentModel(max_epochs=5, **FAST)
    with pytest.raises(Pruned):
        model.fit(*data, on_epoch=prune)
    assert len(model.history_) == 1


def test_class_balance_moves_predictions_towards_the_minority_classes() -> None:
    shares = (0.05, 0.85, 0.10)
    train, val = (
        synthetic(1500, seed=4, shares=shares, noise=0.8),
        synthetic(1500, seed=5, shares=shares, noise=0.8),
    )
    predicted, balanced = {}, {}
    for balance in ("none", "class_weight", "logit_adjust"):
        model = RecurrentModel(class_balance=balance, class_loss_weight=0.8, max_epochs=10, **FAST).fit(
            train, val
        )
        y_pred = model.predict(val).logits.argmax(1)
        predicted[balance] = np.mean(y_pred != 1)  # share predicted in a minority class
        recalls = [np.mean(y_pred[val.y_cls == k] == k) for k in range(3)]
        balanced[balance] = np.mean(recalls)
    for balance in ("class_weight", "logit_adjust"):
        assert predicted[balance] > predicted["none"] + 0.05
        assert balanced[balance] > balanced["none"] + 0.05


def test_pickle_round_trip_predicts_identically(fitted: RecurrentModel, data: tuple[Any, Any]) -> None:
    cloudpickle = pytest.importorskip("cloudpickle")
    before = fitted.predict(data[1])
    for dumps in (pickle.dumps, cloudpickle.dumps):
        restored = pickle.loads(dumps(fitted))
        after = restored.predict(data[1])
        np.testing.assert_array_equal(after.wage, before.wage)
        np.testing.assert_array_equal(after.logits, before.logits)
        assert restored.history_ == fitted.history_ and restored.best_epoch_ == fitted.best_epoch_


def test_encoders_are_a_registry() -> None:
    assert {"lstm", "gru"} <= set(ENCODERS)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"class_balance": "smote"}, "class_balance must be one of"),
        ({"units1": 0}, "units1 must be an integer >= 1"),
        ({"units2": 2.5}, "units2 must be an integer >= 1"),
        ({"dropout": 1.0}, r"dropout must be a finite number in \[0, 1\)"),
        ({"dropout": -0.1}, "dropout must be"),
        ({"class_loss_weight": 1.5}, r"class_loss_weight must be a finite number in \[0, 1\]"),
        ({"learning_rate": 0.0}, "learning_rate must be"),
        ({"batch_size": True}, "batch_size must be an integer"),
        ({"patience": 0}, "patience must be"),
        ({"n_classes": 1}, "n_classes must be None"),
    ],
)
def test_bad_hyper_parameters_fail_with_a_clear_message(
    data: tuple[Any, Any], params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImblabError, match=message):
        RecurrentModel(**params).fit(*data)


def broken(val: Any, **changes: Any) -> Any:
    arrays = {name: getattr(val, name).copy() for name in ("seq", "lengths", "known", "y_reg", "y_cls")}
    for name, change in changes.items():
        arrays[name] = change(arrays[name])
    return make_examples(**arrays, kind=types.SimpleNamespace)


def nan_at_0(a: np.ndarray) -> np.ndarray:
    a.flat[0] = np.nan
    return a


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seq": nan_at_0}, r"val.seq contains NaN"),
        ({"known": nan_at_0}, r"val.known contains NaN"),
        ({"y_reg": nan_at_0}, r"val.y_reg contains NaN"),
        ({"seq": lambda a: a[:, :, :2]}, "val.seq has 2 features per row but the model was fitted with 3"),
        ({"known": lambda a: a[:10]}, r"lengths must have shape \(300,\) and known"),
        ({"lengths": lambda a: a * 0}, "val.lengths must be integers in 1..max_len=6"),
        ({"y_cls": lambda a: a + 1}, r"val.y_cls must be integer class codes 0..2"),
    ],
)
def test_bad_examples_fail_with_a_clear_message(
    data: tuple[Any, Any], changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImblabError, match=message):
        RecurrentModel(max_epochs=1, **FAST).fit(data[0], broken(data[1], **changes))


def test_empty_training_set_and_unfitted_model_fail_clearly(data: tuple[Any, Any]) -> None:
    empty = make_examples(
        np.zeros((0, 6, 3)),
        np.zeros(0),
        np.zeros((0, 2)),
        np.zeros(0),
        np.zeros(0),
        kind=types.SimpleNamespace,
    )
    with pytest.raises(ImblabError, match="train has no examples"):
        RecurrentModel(**FAST).fit(empty, data[1])
    with pytest.raises(ImblabError, match="not fitted yet"):
        RecurrentModel().predict(data[1])


def test_class_balance_needs_every_training_class(data: tuple[Any, Any]) -> None:
    train, val = data
    keep = train.y_cls != 2
    train = make_examples(
        train.seq[keep], train.lengths[keep], train.known[keep], train.y_reg[keep], train.y_cls[keep]
    )
    with pytest.raises(ImblabError, match=r"classes \[2\] have no training examples"):
        RecurrentModel(class_balance="class_weight", n_classes=3, **FAST).fit(train, val)
    model = RecurrentModel(n_classes=3, max_epochs=1, **FAST).fit(
        train, val
    )  # 'none' copes: K from n_classes
    assert model.predict(val).logits.shape == (300, 3)
