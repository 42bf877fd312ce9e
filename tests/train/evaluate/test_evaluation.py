"""The evaluation report on a tiny trained run: schema of report.json, plots, baselines, CLI."""

import json

import numpy as np
import pytest

from synthetic_data import SCHEMA_PATH, synthetic_records
from infer.labels import LabelSchema
from train.evaluate.baselines import MajorityBaseline, TfidfLogRegBaseline, build_baselines
from train.evaluate.evaluation import main as evaluate_main
from train.evaluate.report import worst_errors
from train.run import main as train_main

SYSTEMS = {"model", "majority", "tfidf_logreg", "embeddings_logreg"}


@pytest.fixture
def trained_run(tiny_config):
    tiny_config.eval.enabled = True
    tiny_config.eval.baselines = sorted(SYSTEMS - {"model"})
    return train_main(tiny_config)


def check_metrics_block(block, schema):
    assert set(block["issues"]) >= {"micro_f1", "macro_f1", "per_label"}
    assert set(block["issues"]["per_label"]) == set(schema.issues)
    assert set(block["issues"]["per_label"]["expansion"]) == {"precision", "recall", "f1", "support"}
    assert set(block["stance"]) >= {"accuracy", "macro_f1", "per_label", "confusion_matrix"}
    assert len(block["stance"]["confusion_matrix"]) == len(schema.stance)


def test_training_writes_the_report(trained_run, schema):
    report = json.loads((trained_run / "report.json").read_text())
    assert report["split"] == "test"
    assert report["n"] == len(json.loads((trained_run / "splits.json").read_text())["test"])
    assert set(report["systems"]) == SYSTEMS
    for system in report["systems"].values():
        check_metrics_block(system, schema)
        assert set(system["by_lang"]) == {"en", "ru", "de"}
        for block in system["by_lang"].values():
            check_metrics_block(block, schema)
        assert set(system["by_origin"]) <= {"seed", "translation", "authored"}
    assert set(report["calibration"]["after"]) == {"stance", "issues"}  # train.calibrate's ECE section
    for name in ("stance_confusion.png", "issue_f1_by_system.png", "macro_f1_by_language.png", "reliability.png"):
        assert (trained_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (trained_run / "report.md").read_text()
    assert "## Systems side by side" in md and "tfidf_logreg" in md and "## Worst errors" in md
    assert "## Calibration" in md and "| stance |" in md
    config = json.loads((trained_run / "config.json").read_text())
    assert config["stance_temperature"] > 0 and isinstance(config["issue_calibration"], dict)
    assert "heldout_nll_before" in json.loads((trained_run / "metrics.json").read_text())["calibration"]["stance"]


def test_cli_on_other_data_and_split(trained_run, tmp_path, data_file):
    out = tmp_path / "report"
    assert evaluate_main(["--model", str(trained_run), "--data", str(data_file), "--baselines", "majority",
                          "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == len(synthetic_records()) and set(report["systems"]) == {"model", "majority"}
    assert evaluate_main(["--model", str(trained_run), "--split", "validation", "--baselines", "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["split"] == "validation"


def test_cli_error_on_a_non_run(tmp_path, caplog):
    assert evaluate_main(["--model", str(tmp_path)]) == 2
    assert "has no config.json: not a checkpoint or finished run directory" in caplog.text


def _xy(schema):
    recs = synthetic_records()
    return [r["text"] for r in recs], np.array([schema.encode(r["issues"], r["stance"]) for r in recs])


def test_majority_baseline_predicts_the_prior(schema):
    texts, y = _xy(schema)
    scores = MajorityBaseline(schema).fit(texts, y).predict_scores(["anything", "else"])
    k = len(schema.issues)
    assert np.allclose(scores[:, :k], y[:, :k].mean(0))
    assert (scores[:, k:].argmax(1) == y[:, k:].sum(0).argmax()).all()


def test_tfidf_baseline_learns_the_synthetic_task(schema):
    texts, y = _xy(schema)
    scores = TfidfLogRegBaseline(schema).fit(texts, y).predict_scores(texts)
    k = len(schema.issues)
    assert ((scores[:, :k] >= 0.5) == y[:, :k].astype(bool)).mean() > 0.9
    assert (scores[:, k:].argmax(1) == y[:, k:].argmax(1)).mean() > 0.9


def test_unknown_baseline(schema):
    with pytest.raises(ValueError, match="known: \\['embeddings_logreg', 'majority', 'tfidf_logreg'\\]"):
        build_baselines(["bert"], schema, "x")


def test_worst_errors_show_one_record_per_group():
    schema = LabelSchema.from_yaml(SCHEMA_PATH)
    records = synthetic_records(n_groups=4)
    gold = np.array([[n in r["issues"] for n in schema.issues] + [r["stance"] == s for s in schema.stance]
                     for r in records], dtype=float)
    scores = 1.0 - gold  # every decision wrong, with full confidence
    scores[:, len(schema.issues):] /= scores[:, len(schema.issues):].sum(1, keepdims=True)
    errors = worst_errors(records, scores, gold, schema, [0.5] * len(schema.issues), top=50)
    groups = [next(r["group"] for r in records if r["id"] == e["id"]) for e in errors]
    assert len(groups) == len(set(groups)) == len({r["group"] for r in records})
    assert all(e["predicted"]["stance"] != e["gold"]["stance"] for e in errors)


def _external_file(path, records):
    """Records in the real-news dev set's fields (no origin/source/group; url and date extra)."""
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({"id": "x-" + r["id"], "text": r["text"] + " (reported)", "lang": r["lang"],
                                 "issues": r["issues"], "stance": r["stance"], "url": "https://example.org/a",
                                 "date": ""}, ensure_ascii=False) + "\n")
    return path


def test_extra_data_sections_in_report_plots_and_card(tiny_config, tmp_path, caplog):
    from train.publish.model_card import build_card

    (tmp_path / "realnews").mkdir()
    extra = _external_file(tmp_path / "realnews" / "dev.jsonl", synthetic_records()[:12])
    tiny_config.eval.enabled = True
    tiny_config.eval.baselines = ["majority"]
    tiny_config.eval.extra_data = [str(extra), str(tmp_path / "missing" / "dev.jsonl")]
    with caplog.at_level("WARNING"):
        run_dir = train_main(tiny_config)
    assert any("missing/dev.jsonl not found" in r.getMessage() for r in caplog.records)
    report = json.loads((run_dir / "report.json").read_text())
    assert list(report["extra"]) == ["realnews_dev"]
    section = report["extra"]["realnews_dev"]
    assert section["n"] == 12 and set(section["systems"]) == {"model", "majority"}
    assert set(section["systems"]["model"]["by_origin"]) == {"external"}
    # the section scores exactly its own records: stance support sums to 12
    assert sum(v["support"] for v in section["systems"]["model"]["stance"]["per_label"].values()) == 12
    assert (run_dir / "realnews_dev_stance_confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert section["calibration"]["before"]["stance"]["ece"] >= 0  # ECE before/after on every extra file
    assert (run_dir / "realnews_dev_reliability.png").read_bytes()[:4] == b"\x89PNG"
    md = (run_dir / "report.md").read_text()
    assert "# Extra evaluation `realnews_dev`" in md and "Plot: `realnews_dev_reliability.png`" in md
    card = str(build_card(run_dir))
    assert "`realnews_dev` (12 paragraphs" in card


def test_external_files_cannot_be_training_data(tmp_path, schema):
    from train.data.records import DataError, validate_files

    path = _external_file(tmp_path / "dev.jsonl", synthetic_records()[:2])
    assert [r["origin"] for r in validate_files([path], schema, external=True)] == ["external", "external"]
    with pytest.raises(DataError, match=r"dev.jsonl:1: missing field"):
        validate_files([path], schema)
    rec = {**synthetic_records()[0], "origin": "external", "source": None}
    (tmp_path / "train.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:1: unknown origin 'external'"):
        validate_files([tmp_path / "train.jsonl"], schema)


def test_evaluate_depends_on_nothing_that_trains(monkeypatch):
    """Import train.evaluate afresh (the other train modules forgotten first): nothing upstream comes with it."""
    import importlib
    import sys

    for name in [m for m in sys.modules if m == "train" or m.startswith("train.")]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    importlib.import_module("train.evaluate")
    assert not {"train.run", "train.evaluate.crossval", "train.trainer"} & set(sys.modules)


def test_cv_flag_points_to_the_crossval_command(capsys):
    with pytest.raises(SystemExit):
        evaluate_main(["--model", "runs/x", "--cv", "3"])
    assert "python -m train.evaluate.crossval --config runs/x/train_config.yaml --folds 3" in capsys.readouterr().err


def _fold_report(model_issue_macro, model_stance_macro, lang_macro):
    block = {"issues": {"micro_f1": model_issue_macro, "macro_f1": model_issue_macro},
             "stance": {"accuracy": model_stance_macro, "macro_f1": model_stance_macro}}
    return {"systems": {"model": {**block, "by_lang": {"en": {"macro_f1": lang_macro}}}}}


def test_crossval_aggregates_mean_and_std_of_the_folds():
    from train.evaluate.crossval import aggregate, render

    reports = [_fold_report(0.8, 0.6, 0.5), _fold_report(0.6, 0.7, 0.7), _fold_report(0.7, 0.5, 0.6)]
    reports[2]["systems"]["model"]["by_lang"]["de"] = {"macro_f1": 0.9}  # a language seen in one fold only
    out = aggregate(reports)["model"]
    assert out["issues.macro_f1"]["mean"] == pytest.approx(0.7)
    assert out["issues.macro_f1"]["std"] == pytest.approx(np.sqrt(((0.1 ** 2) * 2) / 3))  # population std
    assert out["stance.macro_f1"]["values"] == [0.6, 0.7, 0.5]
    assert out["by_lang"]["en"] == {"mean": pytest.approx(0.6), "std": pytest.approx(np.std([0.5, 0.7, 0.6])),
                                    "folds": 3}
    assert out["by_lang"]["de"] == {"mean": 0.9, "std": 0.0, "folds": 1}
    assert "| model | 0.700 ± 0.082 |" in render(aggregate(reports), 3)


def test_report_numbers_on_a_hand_computed_case():
    from train.evaluate.report import score_system

    schema = LabelSchema(issues=("a", "b"), stance=("x", "y", "z"))
    gold = np.array([schema.encode(i, s) for i, s in
                     [(["a"], "x"), (["a", "b"], "y"), ([], "z"), (["b"], "x")]])
    scores = np.array([
        [0.9, 0.1, 0.8, 0.1, 0.1],   # a right, b right; stance x right
        [0.6, 0.2, 0.1, 0.7, 0.2],   # a right, b missed (0.2 < 0.3); stance y right
        [0.7, 0.1, 0.6, 0.2, 0.2],   # a false positive; stance x, gold z: wrong
        [0.1, 0.35, 0.2, 0.1, 0.7],  # b right (0.35 >= 0.3); stance z, gold x: wrong
    ])
    out = score_system(scores, gold, schema, [0.5, 0.3], ["en", "en", "de", "de"], ["seed"] * 4)
    # issue a: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 0.8; issue b: tp 1, fp 0, fn 1 -> F1 2/3
    assert out["issues"]["per_label"]["a"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8,
                                                             "support": 2})
    assert out["issues"]["per_label"]["b"]["f1"] == pytest.approx(2 / 3)
    assert out["issues"]["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert out["issues"]["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp 3, fp 1, fn 1
    assert out["issues"]["subset_accuracy"] == pytest.approx(0.5)  # rows 1 and 4 get both issues right
    assert out["stance"]["accuracy"] == pytest.approx(0.5)
    assert out["stance"]["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    # stance F1: x P 1/2 R 1/2 -> 0.5; y 1; z 0 -> macro 0.5
    assert out["stance"]["macro_f1"] == pytest.approx(0.5)
    assert out["by_lang"]["en"]["stance"]["accuracy"] == 1.0 and out["by_lang"]["de"]["stance"]["accuracy"] == 0.0
    assert out["by_lang"]["en"]["n"] == 2
