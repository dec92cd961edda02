"""The epoch loop behind :class:`imblab.panel.recurrent.RecurrentModel`: tensors, loss, one epoch, validation.

Examples are checked and turned into tensors ONCE per ``fit`` (no numpy in the batch loop); a batch is an
index into those tensors, packed once by the encoder. Validation runs in eval mode without gradients, as one
forward pass over the validation set in large batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, f1_score
from torch import Tensor, nn

from imblab.errors import ImblabError

if TYPE_CHECKING:
    from imblab.panel.examples import Examples

__all__ = [
    "EVAL_BATCH",
    "MultiTaskLoss",
    "PanelTensors",
    "forward_all",
    "tensorise",
    "torch_session",
    "train_epoch",
    "validation_logs",
]

# Batch size for no-grad forward passes (validation, predict): larger than training batches because nothing
# is kept for backward; small enough that a batch of nlswork-sized sequences stays a few MB.
EVAL_BATCH = 4096


@dataclass(frozen=True)
class PanelTensors:
    """The model inputs (and, for training/validation, the targets) of a set of Examples as CPU tensors."""

    seq: Tensor  # float32 (n, max_len, n_seq)
    lengths: Tensor  # int64 (n,), on CPU as pack_padded_sequence requires
    known: Tensor  # float32 (n, n_known)
    y_std: Tensor | None = None  # float32 (n,) the regression target standardised with wage_scale
    y_cls: Tensor | None = None  # int64 (n,)
    wage_scale: tuple[float, float] = (0.0, 1.0)  # (mean, std) of the regression target used for y_std

    def __len__(self) -> int:
        return len(self.lengths)


def _array(examples: Examples, attr: str, name: str) -> np.ndarray:
    if not hasattr(examples, attr):
        raise ImblabError(
            f"{name} has no '{attr}': pass imblab.panel.examples.Examples (seq, lengths, known, ...)"
        )
    return np.asarray(getattr(examples, attr))


def tensorise(
    examples: Examples,
    name: str,
    *,
    n_seq: int | None = None,
    n_known: int | None = None,
    n_classes: int | None = None,
    wage_scale: tuple[float, float] | None = None,
) -> PanelTensors:
    """Check ``examples`` (any object with the Examples attributes) against the contract; convert them once.

    ``n_seq``/``n_known`` (when given) must match what the network was built for; ``max_len`` may differ
    because packing ignores padding. Targets are read and checked only when ``n_classes`` is given
    (training/validation); the regression target is standardised with ``wage_scale=(mean, std)``, or with
    its own mean/std when ``wage_scale`` is None (the training set).
    """
    seq, lengths, known = (_array(examples, a, name) for a in ("seq", "lengths", "known"))
    if seq.ndim == 3 and seq.shape[0] == 0:
        raise ImblabError(
            f"{name} has no examples: check the split (every person in {name} may lack 2 waves)"
        )
    if seq.ndim != 3 or seq.shape[1] == 0:
        raise ImblabError(f"{name}.seq must have shape (n >= 1, max_len >= 1, n_seq), got {seq.shape}")
    n, max_len = seq.shape[:2]
    if lengths.shape != (n,) or known.ndim != 2 or known.shape[0] != n:
        raise ImblabError(
            f"{name}: lengths must have shape ({n},) and known ({n}, n_known) to match seq {seq.shape}; "
            f"got lengths {lengths.shape}, known {known.shape}"
        )
    for attr, expected, actual in (("seq", n_seq, seq.shape[2]), ("known", n_known, known.shape[1])):
        if expected is not None and actual != expected:
            raise ImblabError(
                f"{name}.{attr} has {actual} features per row but the model was fitted with {expected}: "
                "build every split with the same feature columns"
            )
    if not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 1 or lengths.max() > max_len:
        raise ImblabError(
            f"{name}.lengths must be integers in 1..max_len={max_len}, got {lengths.min()}..{lengths.max()}"
        )
    for attr, values in (("seq", seq), ("known", known)):
        if not np.isfinite(values).all():
            raise ImblabError(
                f"{name}.{attr} contains NaN or infinite values: fill missing values (e.g. 0 plus a missing "
                "indicator) before training"
            )
    inputs = {
        "seq": torch.as_tensor(seq, dtype=torch.float32),
        "lengths": torch.as_tensor(lengths, dtype=torch.int64),
        "known": torch.as_tensor(known, dtype=torch.float32),
    }
    if n_classes is None:
        return PanelTensors(**inputs)
    y_reg, y_cls = _array(examples, "y_reg", name).astype(np.float64), _array(examples, "y_cls", name)
    if y_reg.shape != (n,) or y_cls.shape != (n,):
        raise ImblabError(
            f"{name}: y_reg and y_cls must have shape ({n},), got {y_reg.shape} and {y_cls.shape}"
        )
    if not np.isfinite(y_reg).all():
        raise ImblabError(
            f"{name}.y_reg contains NaN or infinite values: drop those examples before training"
        )
    if not np.issubdtype(y_cls.dtype, np.integer) or y_cls.min() < 0 or y_cls.max() >= n_classes:
        raise ImblabError(
            f"{name}.y_cls must be integer class codes 0..{n_classes - 1}, got values {np.unique(y_cls)[:10]}"
        )
    # A constant training target keeps scale 1 rather than dividing by zero.
    mean, std = wage_scale if wage_scale is not None else (float(y_reg.mean()), float(y_reg.std()) or 1.0)
    return PanelTensors(
        **inputs,
        y_std=torch.as_tensor((y_reg - mean) / std, dtype=torch.float32),
        y_cls=torch.as_tensor(y_cls, dtype=torch.int64),
        wage_scale=(mean, std),
    )


@dataclass(frozen=True)
class MultiTaskLoss:
    """``(1 - w) * MSE(standardised wage) + w * CE(class)``, the loss trained on and early-stopped on.

    ``class_weight`` weights the cross-entropy (``class_balance="class_weight"``); ``logit_offset`` is
    ``tau * log(prior)``, ADDED to the logits inside the loss only (``class_balance="logit_adjust"``, the
    logit-adjusted loss of Menon et al. 2021), so the network's plain logits are already prior-corrected.
    """

    class_loss_weight: float
    class_weight: Tensor | None = None
    logit_offset: Tensor | None = None

    def __call__(self, wage: Tensor, logits: Tensor, y_std: Tensor, y_cls: Tensor) -> Tensor:
        if self.logit_offset is not None:
            logits = logits + self.logit_offset
        w = self.class_loss_weight
        return (1 - w) * F.mse_loss(wage, y_std) + w * F.cross_entropy(
            logits, y_cls, weight=self.class_weight
        )


def train_epoch(
    module: nn.Module,
    data: PanelTensors,
    loss_fn: MultiTaskLoss,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over ``data`` in a fresh random order; returns the example-weighted mean training loss."""
    assert data.y_std is not None and data.y_cls is not None
    module.train()
    order = torch.randperm(len(data), generator=generator)
    total = 0.0
    for start in range(0, len(data), batch_size):
        idx = order[start : start + batch_size]
        wage, logits = module(data.seq[idx], data.lengths[idx], data.known[idx])
        loss = loss_fn(wage, logits, data.y_std[idx], data.y_cls[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(data)


@torch.no_grad()
def forward_all(module: nn.Module, data: PanelTensors) -> tuple[Tensor, Tensor]:
    """Standardised wage predictions (n,) and plain logits (n, K) in eval mode, batched, without gradients."""
    module.eval()
    outputs = [
        module(data.seq[s : s + EVAL_BATCH], data.lengths[s : s + EVAL_BATCH], data.known[s : s + EVAL_BATCH])
        for s in range(0, len(data), EVAL_BATCH)
    ]
    return torch.cat([w for w, _ in outputs]), torch.cat([c for _, c in outputs])


def validation_logs(module: nn.Module, data: PanelTensors, loss_fn: MultiTaskLoss) -> dict[str, float]:
    """Validation metrics of one epoch; ``val_loss`` is the training loss, ``val_objective`` is comparable
    across trials (unweighted standardised MSE + plain cross-entropy, whatever ``w`` and class balance)."""
    assert data.y_std is not None and data.y_cls is not None
    wage, logits = forward_all(module, data)
    mse = F.mse_loss(wage, data.y_std).item()
    y_true, y_pred = data.y_cls.numpy(), logits.argmax(dim=1).numpy()
    labels = np.arange(logits.shape[1])
    return {
        "val_loss": loss_fn(wage, logits, data.y_std, data.y_cls).item(),
        "val_objective": mse + F.cross_entropy(logits, data.y_cls).item(),
        "val_wage_rmse": math.sqrt(mse) * data.wage_scale[1],  # original units
        "val_class_accuracy": float(np.mean(y_true == y_pred)),
        "val_class_balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "val_class_macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
    }


@contextmanager
def torch_session(seed: int | None, n_threads: int) -> Iterator[torch.Generator]:
    """Run with ``n_threads`` intra-op threads and, when ``seed`` is given, torch's global RNG (dropout, init)
    seeded; the caller's thread count and RNG state are restored afterwards, so a fit has no side effects."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            generator = torch.Generator()
            if seed is not None:
                torch.manual_seed(seed)
                generator.manual_seed(seed)
            yield generator
    finally:
        torch.set_num_threads(previous)
