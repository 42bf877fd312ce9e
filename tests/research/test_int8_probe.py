"""research/int8_probe.py: the int8 decisions against fp32 and the margin gate."""

import numpy as np
import pytest

from research.int8_probe import main as int8_probe, margins


def test_margins_take_the_closest_decision():
    # two issues with thresholds 0.5, three stance classes
    scores = np.array([[0.9, 0.1, 0.6, 0.3, 0.1],     # issues far (|logit| 2.2), stance log(0.6/0.3) = 0.69
                       [0.52, 0.1, 0.8, 0.1, 0.1]])  # issue 0 at logit 0.08 from its cut
    m = margins(scores, np.array([0.5, 0.5]), k=2)
    assert m[0] == pytest.approx(np.log(2.0))
    assert m[1] == pytest.approx(np.log(0.52 / 0.48))


def test_int8_probe_compares_with_fp32(tiny_checkpoint, data_file):
    results = int8_probe(["--model", str(tiny_checkpoint), "--data", str(data_file), "--repeat", "1",
                          "--variant", "ao-tensor", "--variant", "ao-channel"])
    assert list(results) == ["ao-tensor", "ao-channel"]
    for r in results.values():
        assert r["seconds"] > 0 and r["paragraphs_changed"] >= r["stance_changed"] >= 0
        gates = [r[f"gate_{d}"] for d in (0.1, 0.25, 0.5, 1.0, 1.5)]
        # a wider gate re-runs more paragraphs and misses fewer changed ones
        assert [g["rerun"] for g in gates] == sorted(g["rerun"] for g in gates)
        assert [g["missed"] for g in gates] == sorted((g["missed"] for g in gates), reverse=True)
        assert all(g["missed"] <= r["paragraphs_changed"] for g in gates)
