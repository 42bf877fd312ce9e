"""Calibration: fitting on hand-made logits lowers NLL and ECE; a calibrated checkpoint in infer and a pipeline."""

import json
import shutil

import numpy as np
import pytest

from infer import Classifier
from infer.calibration import Calibration
from train.calibrate import (binary_nll, calibration_report, ece, fit_calibration, fit_platt, fit_temperature,
                             render_calibration_markdown, stance_nll, write_reliability_diagram)

TEXTS = ["NATO drills near the border", "Sanctions on Russian banks", "Beijing backs Moscow",
         "Missiles in Europe. Talks in Geneva!", "Russia insists on guarantees"]


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _overconfident(n=600, seed=0, sharpen=4.0):
    """Stance logits from a calibrated generator, then multiplied by `sharpen` (an overconfident model)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(n, 3)) * 1.2
    gold = np.array([rng.choice(3, p=p) for p in _softmax(true_logits)])
    return true_logits * sharpen, gold


def test_temperature_fit_lowers_nll_and_ece():
    logits, gold = _overconfident()
    t = fit_temperature(logits, gold)
    assert 3.0 < t < 5.5  # the generator was sharpened 4x
    assert stance_nll(logits, gold, t) < stance_nll(logits, gold) - 0.2
    before, after = _softmax(logits), _softmax(logits / t)
    ece_before = ece(before.max(1), before.argmax(1) == gold)
    ece_after = ece(after.max(1), after.argmax(1) == gold)
    assert ece_after < ece_before / 2 and ece_before > 0.1
    assert (after.argmax(1) == before.argmax(1)).all()  # a temperature never changes the stance decision


def test_platt_fit_corrects_a_shifted_overconfident_issue():
    rng = np.random.default_rng(1)
    z = rng.normal(size=2000) * 2
    y = (rng.random(2000) < 1 / (1 + np.exp(-z))).astype(float)
    shown = 3 * z + 2  # what an overconfident, positively biased head would output
    a, b = fit_platt(shown, y)
    assert a == pytest.approx(1 / 3, abs=0.05) and b == pytest.approx(-2 / 3, abs=0.15)
    assert binary_nll(shown, y, a, b) < binary_nll(shown, y) - 0.2
    p_raw, p_cal = 1 / (1 + np.exp(-shown)), 1 / (1 + np.exp(-(a * shown + b)))
    assert ece(p_cal, y) < ece(p_raw, y) / 2


def test_fit_calibration_keeps_only_what_helps_held_out(schema):
    logits_stance, gold = _overconfident(n=400)
    rng = np.random.default_rng(2)
    k = len(schema.issues)
    z = rng.normal(size=(400, k)) * 2
    issues = (rng.random((400, k)) < 1 / (1 + np.exp(-z))).astype(float)
    z[:, 0] = 3 * z[:, 0] + 2  # only the first issue is miscalibrated
    logits = np.concatenate([z, logits_stance], 1)
    labels = np.concatenate([issues, np.eye(3)[gold]], 1)
    groups = [f"g{i // 4}" for i in range(400)]  # groups of 4 "translations"
    cal, info = fit_calibration(logits, labels, schema, groups=groups)
    assert cal.stance_temperature > 2 and info["stance"]["kept"]
    assert info["stance"]["heldout_nll_after"] < info["stance"]["heldout_nll_before"]
    assert schema.issues[0] in cal.issue_calibration
    assert len(cal.issue_calibration) < k  # the calibrated issues are left alone (Platt did not help held out)
    for name, entry in info["issues"].items():
        assert entry["kept"] == (name in cal.issue_calibration)


def test_thresholds_map_so_decisions_do_not_change(schema):
    cal = Calibration(1.7, {"expansion": {"scale": 0.4, "bias": -0.8}, "sanctions": {"scale": 2.5, "bias": 1.1}})
    raw_t = np.array([0.46, 0.5, 0.3, 0.62, 0.89])
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5000, 8)) * 3
    k = len(schema.issues)
    raw = schema.scores(logits)
    calibrated = schema.scores(cal.apply(logits, schema.issues, k))
    assert not np.allclose(raw[:, 0], calibrated[:, 0])
    assert ((raw[:, :k] >= raw_t) == (calibrated[:, :k] >= cal.issue_thresholds(raw_t, schema.issues))).all()
    assert (raw[:, k:].argmax(1) == calibrated[:, k:].argmax(1)).all()


def test_bad_calibration_in_config_names_the_key():
    with pytest.raises(ValueError, match="stance_temperature must be a positive number"):
        Calibration(0.0)
    with pytest.raises(ValueError, match=r"issue_calibration\['missiles'\]: scale must be > 0"):
        Calibration(1.0, {"missiles": {"scale": -1.0, "bias": 0.0}})


@pytest.fixture(scope="module")
def calibrated_checkpoint(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint with a stance temperature and two Platt maps in its config.json."""
    out = tmp_path_factory.mktemp("calibrated") / "ckpt"
    shutil.copytree(tiny_checkpoint, out)
    config = json.loads((out / "config.json").read_text())
    config["stance_temperature"] = 0.25  # sharpen: the tiny random head is near-uniform
    config["issue_calibration"] = {"expansion": {"scale": 8.0, "bias": 0.5}, "missiles": {"scale": 0.5, "bias": -1.0}}
    config["issue_thresholds"] = {**config["issue_thresholds"], "expansion": 0.52}
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_classifier_applies_the_calibration(tiny_checkpoint, calibrated_checkpoint):
    plain = Classifier.from_pretrained(tiny_checkpoint, route="fp32")
    cal = Classifier.from_pretrained(calibrated_checkpoint, route="fp32")
    assert cal.calibration.stance_temperature == 0.25
    windows, _ = plain._windows(TEXTS)
    logits = plain._logits(windows, 8)
    k = len(plain.schema.issues)
    scores = cal.predict_scores(TEXTS)
    assert scores[:, k:] == pytest.approx(_softmax(logits[:, k:] / 0.25), abs=1e-5)
    assert scores[:, 0] == pytest.approx(1 / (1 + np.exp(-(8 * logits[:, 0] + 0.5))), abs=1e-5)
    assert scores[:, 2] == pytest.approx(plain.predict_scores(TEXTS)[:, 2], abs=1e-6)  # no map: unchanged
    assert cal.predict_scores(TEXTS, calibrated=False) == pytest.approx(plain.predict_scores(TEXTS), abs=1e-6)
    # decisions equal those of the uncalibrated scores against the raw thresholds
    raw = cal.predict_scores(TEXTS, calibrated=False)
    preds = cal.classify(TEXTS)
    for p, row in zip(preds, raw):
        assert p.issues == [n for n, s, t in zip(cal.schema.issues, row[:k], cal.raw_thresholds) if s >= t]
        assert p.stance == cal.schema.stance[int(row[k:].argmax())]
    assert cal.with_route("bf16").calibration == cal.calibration
    assert cal.with_route("bf16").thresholds == pytest.approx(cal.thresholds)


def test_a_plain_pipeline_still_loads_the_calibrated_checkpoint(calibrated_checkpoint):
    from transformers import pipeline

    pipe = pipeline("text-classification", model=str(calibrated_checkpoint), top_k=None)
    out = pipe(TEXTS[0])
    out = out[0] if isinstance(out[0], list) else out
    assert len(out) == 8 and {d["label"] for d in out} >= {"issue/expansion", "stance/neutral"}
    assert pipe.model.config.stance_temperature == 0.25


def test_report_section_markdown_and_diagram(schema, tmp_path):
    logits, gold = _overconfident(n=300)
    k = len(schema.issues)
    rng = np.random.default_rng(4)
    issue_logits = rng.normal(size=(300, k)) * 4
    labels = np.concatenate([(issue_logits > 0).astype(float), np.eye(3)[gold]], 1)
    cal = Calibration(fit_temperature(logits, gold))
    full = np.concatenate([issue_logits, logits], 1)
    section = calibration_report(schema.scores(full), schema.scores(cal.apply(full, schema.issues, k)), labels,
                                 schema, cal)
    assert section["after"]["stance"]["ece"] < section["before"]["stance"]["ece"]
    assert sum(section["before"]["issues"]["reliability"]["count"]) == 300 * k
    md = "\n".join(render_calibration_markdown(section))
    assert "| stance |" in md and "| issues |" in md and "ECE before" in md
    path = write_reliability_diagram(section, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
