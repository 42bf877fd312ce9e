import numpy as np
import pytest

from train.evaluate.metrics import IssueStanceMetric, flatten

ISSUES = ["a", "b"]
STANCE = ["favor", "against", "neutral"]


def compute(pred, ref, thresholds=None):
    return IssueStanceMetric().compute(predictions=pred, references=ref, issue_names=ISSUES,
                                       stance_names=STANCE, thresholds=thresholds)


def test_hand_computed_values():
    # issue a: gold 1,1,0,0 pred 1,0,1,0 -> tp1 fp1 fn1: P=R=F1=0.5
    # issue b: gold 0,1,0,1 pred 0,1,0,0 -> tp1 fp0 fn1: P=1 R=0.5 F1=2/3
    # micro: tp2 fp1 fn2 -> P=2/3 R=1/2 F1=4/7
    # stance gold f,a,n,n pred f,n,n,a -> acc 0.5; F1 favor 1, against 0, neutral 0.5 -> macro 0.5
    pred = [[0.9, 0.1, 0.8, 0.1, 0.1], [0.2, 0.7, 0.1, 0.2, 0.7], [0.6, 0.3, 0.1, 0.2, 0.7], [0.1, 0.4, 0.2, 0.5, 0.3]]
    ref = [[1, 0, 1, 0, 0], [1, 1, 0, 1, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 1]]
    out = compute(pred, ref)
    assert out["issues"]["per_label"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert out["issues"]["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert out["issues"]["micro_f1"] == pytest.approx(4 / 7)
    assert out["issues"]["macro_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert out["issues"]["subset_accuracy"] == 0.25
    assert out["stance"]["accuracy"] == 0.5
    assert out["stance"]["macro_f1"] == pytest.approx(0.5)
    assert out["stance"]["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert out["macro_f1"] == pytest.approx(((0.5 + 2 / 3) / 2 + 0.5) / 2)
    assert out["n"] == 4


def test_thresholds_change_issue_decisions():
    pred = [[0.4, 0.1, 1, 0, 0], [0.3, 0.1, 1, 0, 0]]
    ref = [[1, 0, 1, 0, 0], [0, 0, 1, 0, 0]]
    assert compute(pred, ref)["issues"]["per_label"]["a"]["f1"] == 0.0
    assert compute(pred, ref, thresholds=[0.35, 0.5])["issues"]["per_label"]["a"]["f1"] == 1.0


def test_shape_errors_are_explicit():
    with pytest.raises(ValueError, match=r"shape \(n, 5\)"):
        compute([[0.1, 0.2]], [[1, 0]])


def test_flatten_keeps_scalars():
    flat = flatten(compute([[0.9, 0.1, 1, 0, 0]], [[1, 0, 1, 0, 0]]))
    assert flat["issues/per_label/a/f1"] == 1.0
    assert "stance/confusion_matrix" not in flat


def test_plain_function_equals_the_evaluate_metric():
    from train.evaluate.metrics import issue_stance_metrics

    rng = np.random.default_rng(0)
    pred, ref = rng.random((30, 5)), (rng.random((30, 5)) > 0.5).astype(float)
    ref[:, 2:] = np.eye(3)[rng.integers(0, 3, 30)]
    cuts = [0.3, 0.6]
    via_evaluate = IssueStanceMetric().compute(predictions=pred, references=ref, issue_names=ISSUES,
                                               stance_names=STANCE, thresholds=cuts)
    assert issue_stance_metrics(pred, ref, ISSUES, STANCE, cuts) == via_evaluate
