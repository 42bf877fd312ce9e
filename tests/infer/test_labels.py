"""infer.labels.LabelSchema: encoding gold labels, decoding scores, reading a checkpoint's config."""

import doctest
import types

import numpy as np
import pytest

import infer.labels
from infer.labels import LabelSchema

SCHEMA = LabelSchema(issues=("a", "b", "c"), stance=("x", "y", "z"))


def test_encode_and_decide_round_trip():
    gold = np.array([SCHEMA.encode(["a", "c"], "y"), SCHEMA.encode([], "z")])
    assert gold.tolist() == [[1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    issues, stance = SCHEMA.decide(gold, [0.5, 0.5, 0.5])
    assert issues.tolist() == [[True, False, True], [False, False, False]]
    assert stance.tolist() == [1, 2]


def test_decide_applies_each_threshold_to_its_own_column():
    scores = np.array([[0.3, 0.3, 0.3, 0.2, 0.5, 0.3]])
    issues, stance = SCHEMA.decide(scores, [0.3, 0.31, 0.1])
    assert issues.tolist() == [[True, False, True]]  # a score equal to its threshold is on
    assert stance.tolist() == [1]
    issue_cols, stance_cols = SCHEMA.split(scores)
    assert issue_cols.shape == (1, 3) and stance_cols.tolist() == [[0.2, 0.5, 0.3]]


def test_encode_names_the_unknown_label():
    with pytest.raises(ValueError, match="unknown issue label 'd'; the schema has \\['a', 'b', 'c'\\]"):
        SCHEMA.encode(["d"], "x")


def test_from_model_config_refuses_a_mismatched_id2label():
    good = {i: n for i, n in SCHEMA.id2label.items()}
    config = types.SimpleNamespace(label_schema=SCHEMA.to_dict(), id2label={str(i): n for i, n in good.items()})
    loaded = LabelSchema.from_model_config(config)
    assert (loaded.issues, loaded.stance) == (SCHEMA.issues, SCHEMA.stance)
    swapped = dict(good)
    swapped[0], swapped[1] = good[1], good[0]
    config.id2label = swapped
    with pytest.raises(ValueError, match="does not match its label_schema"):
        LabelSchema.from_model_config(config)
    with pytest.raises(ValueError, match="no `label_schema`"):
        LabelSchema.from_model_config(types.SimpleNamespace(id2label=good))


def test_docstring_examples():
    assert doctest.testmod(infer.labels).failed == 0
