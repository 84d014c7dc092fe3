"""A score whose fit failed is an error, never a NaN logged as if it were a score."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import svm

from ugvae_pipeline.evaluation.alignment import domain_accuracy
from ugvae_pipeline.evaluation.metrics import svm_accuracy
from ugvae_pipeline.training.preemption import TrainingInterrupted


def _separable(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    types = np.repeat(["a", "b"], 20)
    codes = rng.normal(size=(40, 3)) + np.where(types == "a", 3.0, -3.0)[:, None]
    return codes, types


def test_a_fold_whose_fit_fails_raises_instead_of_scoring_nan():
    codes, types = _separable()
    assert svm_accuracy(codes, types) == 1.0
    codes[7, 1] = np.nan  # in the training set of four folds of five: those fits fail
    with pytest.raises(ValueError, match="NaN"):
        svm_accuracy(codes, types)
    with pytest.raises(ValueError, match="NaN"):
        domain_accuracy(codes, types)


def test_an_interrupt_in_a_fold_is_not_taken_for_a_failed_fit(monkeypatch):
    codes, types = _separable()
    fit = svm.SVC.fit

    def interrupted(self, *args, **kwargs):
        if len(calls) == 2:  # the third fold
            raise TrainingInterrupted("SIGTERM", "SIGTERM")
        calls.append(1)
        return fit(self, *args, **kwargs)

    calls: list[int] = []
    monkeypatch.setattr(svm.SVC, "fit", interrupted)
    with pytest.raises(TrainingInterrupted):
        svm_accuracy(codes, types)
