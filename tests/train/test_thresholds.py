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


def test_known_best_cut_of_a_hand_made_case():
    # positives 0.9, 0.8, 0.75; negatives 0.7, 0.6, 0.2: only cuts in (0.70, 0.75] are perfect (F1 1);
    # (0.6, 0.7] gives 3 / 4 precision (F1 0.857), so the tolerance does not reach 0.5: the nearest good cut is 0.71
    probs = np.array([[0.9], [0.8], [0.75], [0.7], [0.6], [0.2]])
    labels = np.array([[1], [1], [1], [0], [0], [0]])
    assert tune_thresholds(probs, labels).tolist() == [0.71]
    # with a tolerance that admits F1 0.857 the cut moves to the nearest of those, 0.61
    assert tune_thresholds(probs, labels, tolerance=0.15).tolist() == [0.61]


def test_f1_from_the_curve_equals_f1_score_at_every_grid_point():
    from sklearn.metrics import f1_score

    from train.thresholds import _f1_at

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = np.round(np.clip(y * 0.3 + rng.uniform(0, 0.7, 40), 0, 1), 2)  # ties and scores on grid points
    grid = np.round(np.arange(0.05, 0.951, 0.01), 6)
    expected = [f1_score(y, p >= t, zero_division=0) for t in grid]
    np.testing.assert_array_equal(_f1_at(grid, y, p), expected)


def test_docstring_examples():
    assert doctest.testmod(train.thresholds).failed == 0
