import numpy as np

from train.thresholds import tune_thresholds


def test_threshold_separates_and_maximizes_f1():
    probs = np.array([[0.9, 0.2], [0.7, 0.4], [0.3, 0.8], [0.1, 0.6]])
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    th = tune_thresholds(probs, labels)
    assert np.array_equal((probs >= th).astype(int), labels)
    assert th[0] == np.clip((0.7 + 0.3) / 2, 0.05, 0.95)


def test_label_without_positives_keeps_default():
    probs = np.array([[0.9], [0.1]])
    assert tune_thresholds(probs, np.array([[0], [0]]), default=0.5).tolist() == [0.5]


def test_thresholds_are_clipped():
    probs = np.array([[0.999], [0.998], [0.001]])
    th = tune_thresholds(probs, np.array([[1], [1], [0]]), lo=0.05, hi=0.95)
    assert 0.05 <= th[0] <= 0.95
