import doctest

import numpy as np

import train.thresholds
from train.thresholds import tune_thresholds


def test_threshold_separates_and_maximizes_f1():
    probs = np.array([[0.9, 0.2], [0.7, 0.4], [0.3, 0.8], [0.1, 0.6]])
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    th = tune_thresholds(probs, labels)
    assert np.array_equal((probs >= th).astype(int), labels)
    assert th.tolist() == [0.5, 0.5]  # any cut in (0.3, 0.7] / (0.4, 0.6] is perfect: the one nearest 0.5


def test_best_cut_far_from_default_is_kept_when_clearly_better():
    probs = np.array([[0.3], [0.25], [0.2], [0.1], [0.05]])
    labels = np.array([[1], [1], [1], [0], [0]])
    th = tune_thresholds(probs, labels)
    assert 0.1 < th[0] <= 0.2


def test_near_ties_shrink_toward_the_default():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(200, 1))
    probs = np.clip(labels * 0.6 + rng.normal(0.2, 0.15, size=(200, 1)), 0, 1)
    loose, strict = tune_thresholds(probs, labels, tolerance=0.05), tune_thresholds(probs, labels, tolerance=0.0)
    assert abs(loose[0] - 0.5) <= abs(strict[0] - 0.5)


def test_label_without_positives_keeps_default():
    probs = np.array([[0.9], [0.1]])
    assert tune_thresholds(probs, np.array([[0], [0]]), default=0.5).tolist() == [0.5]


def test_thresholds_stay_in_range():
    probs = np.array([[0.999], [0.998], [0.001]])
    th = tune_thresholds(probs, np.array([[1], [1], [0]]), lo=0.05, hi=0.95)
    assert 0.05 <= th[0] <= 0.95


def test_docstring_examples():
    assert doctest.testmod(train.thresholds).failed == 0
