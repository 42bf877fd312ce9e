"""infer.classify / Classifier on a tiny random checkpoint: API, thresholds, windows, documents, threads, bad input."""

import json
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infer
from infer import Classifier, DocumentPrediction, Prediction
from infer.classifier import MODEL_ENV


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return Classifier.from_pretrained(tiny_checkpoint, route="fp32")


TEXTS = ["NATO drills near the border", "Sanctions on Russian banks", "Beijing backs Moscow"]


def test_str_gives_one_prediction_list_gives_list_in_order(clf):
    one = clf.classify(TEXTS[0])
    many = clf.classify(TEXTS)
    assert isinstance(one, Prediction)
    assert [p.text for p in many] == TEXTS
    assert many[0] == one
    assert clf.classify([]) == []
    assert set(one.issue_scores) == {"expansion", "missiles", "exercises", "sanctions", "china_alignment"}
    assert set(one.stance_scores) == {"favor", "against", "neutral"}
    assert sum(one.stance_scores.values()) == pytest.approx(1.0, abs=1e-4)
    assert one.stance == max(one.stance_scores, key=one.stance_scores.get)
    json.dumps(one.to_dict())


def test_batching_and_length_sorting_do_not_change_results(clf):
    texts = [t * (i % 4 + 1) for i, t in enumerate(TEXTS * 5)]
    a = clf.classify(texts, batch_size=1)
    b = clf.classify(texts, batch_size=7)
    for x, y in zip(a, b):
        assert x.text == y.text
        assert x.issue_scores == pytest.approx(y.issue_scores, abs=1e-4)


def test_thresholds_are_applied(clf):
    pred = clf.classify(TEXTS[0])
    low = Classifier(clf.model, clf.tokenizer, clf.schema, [0.0] * 5, clf.device)
    high = Classifier(clf.model, clf.tokenizer, clf.schema, [1.0] * 5, clf.device)
    assert low.classify(TEXTS[0]).issues == list(clf.schema.issues)
    assert high.classify(TEXTS[0]).issues == []
    ranked = sorted(pred.issue_scores.values())
    mid = (ranked[1] + ranked[2]) / 2
    custom = Classifier(clf.model, clf.tokenizer, clf.schema, [mid] * 5, clf.device).classify(TEXTS[0])
    assert custom.issues == [n for n in clf.schema.issues if pred.issue_scores[n] >= mid]


def test_long_text_is_windowed_not_truncated(clf):
    short = Classifier(clf.model, clf.tokenizer, clf.schema, clf.thresholds, clf.device, max_length=16, stride=4)
    text = " ".join(["NATO drills near the border."] * 20)
    pred = short.classify(text)
    assert pred.windows > 1
    windows, owner = short._windows([text])
    assert all(len(w) <= 16 for w in windows)
    # issue score is the max over the windows
    scores = short.schema.scores(short._logits(windows, 8))
    assert pred.issue_scores["expansion"] == pytest.approx(scores[:, 0].max(), abs=1e-5)
    # every token of the text is covered by some window
    ids = clf.tokenizer(text, add_special_tokens=False)["input_ids"]
    covered = [t for w in windows for t in w]
    assert set(ids) <= set(covered)


def test_classify_document_aggregates_paragraphs(clf):
    doc = "NATO drills near the border.\n\nSanctions on Russian banks.\n\nBeijing backs Moscow."
    out = clf.classify_document(doc)
    assert isinstance(out, DocumentPrediction)
    assert [p.text for p in out.paragraphs] == ["NATO drills near the border.", "Sanctions on Russian banks.",
                                               "Beijing backs Moscow."]
    for name in clf.schema.issues:
        assert out.issue_scores[name] == max(p.issue_scores[name] for p in out.paragraphs)
    assert sum(out.stance_distribution.values()) == pytest.approx(1.0)
    assert out.stance in clf.schema.stance
    json.dumps(out.to_dict())


@pytest.mark.parametrize("bad, error, message", [
    ([None], TypeError, "texts[0] must be a str, got NoneType"),
    (["ok", 3], TypeError, "texts[1] must be a str, got int"),
    (["ok", "  \n\t"], ValueError, "texts[1] is empty or holds only whitespace"),
    ([""], ValueError, "texts[0] is empty"),
    (["ok", "bad \ud800 surrogate"], ValueError, "texts[1] is not valid Unicode"),
])
def test_bad_input_names_the_index(clf, bad, error, message):
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        clf.classify(bad)


def test_none_is_a_type_error(clf):
    with pytest.raises(TypeError, match="texts must be a str or a sequence"):
        clf.classify(None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4))
def test_any_unicode_classifies_or_raises_a_clear_error(clf, texts):
    try:
        preds = clf.classify(texts)
    except (TypeError, ValueError) as exc:
        assert "texts[" in str(exc)
        return
    assert len(preds) == len(texts)
    for p in preds:
        assert all(0.0 <= s <= 1.0 for s in p.issue_scores.values())


def test_thread_safe(clf):
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 4)]
    expected = [p.issue_scores for p in clf.classify(texts)]
    results, errors = {}, []

    def work(i):
        try:
            results[i] = [p.issue_scores for p in clf.classify(texts[i:] + texts[:i], batch_size=3)]
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, got in results.items():
        rotated = expected[i:] + expected[:i]
        for a, b in zip(got, rotated):
            assert a == pytest.approx(b, abs=1e-4)


def test_load_caches_and_module_level_classify(tiny_checkpoint, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(tiny_checkpoint))
    a = infer.load(route="fp32")
    assert infer.load(route="fp32") is a
    assert isinstance(infer.classify("NATO", device="cpu"), Prediction)


def test_no_model_anywhere_says_how_to_train(monkeypatch, tmp_path):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m train --config configs/default.yaml"):
        infer.classify("NATO")


def test_incompatible_checkpoint_says_what_is_wrong(tiny_backbone, tmp_path):
    with pytest.raises(ValueError, match="no `label_schema`"):
        Classifier.from_pretrained(tiny_backbone)
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        Classifier.from_pretrained(tmp_path)


def test_routes_agree_with_fp32(clf, tiny_checkpoint):
    import torch

    from infer.routes import available_routes

    other = clf.with_route("bf16")
    assert other.route == "bf16" and next(other.model.parameters()).dtype == torch.bfloat16
    assert other.agreement(clf) >= 0.8
    assert available_routes(clf.device)[-1] == "fp32"
    if clf.device.type == "cuda":  # fp16 runs on CUDA devices only
        assert next(clf.with_route("fp16").model.parameters()).dtype == torch.float16
    cpu = Classifier.from_pretrained(tiny_checkpoint, device="cpu", route="fp32")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        cpu.with_route("fp16")
    # int8 is gone (it changed too many real-news decisions): asking for it says so and what to use
    with pytest.raises(ValueError, match="route 'int8' was removed.*'bf16'"):
        clf.with_route("int8")
    with pytest.raises(ValueError, match="route 'int8' was removed"):
        Classifier.from_pretrained(tiny_checkpoint, route="int8")
    with pytest.raises(ValueError, match="unknown route 'fast'"):
        Classifier.from_pretrained(tiny_checkpoint, route="fast")
    auto = Classifier.from_pretrained(tiny_checkpoint, route="auto")
    assert auto.route in available_routes(clf.device)


def test_auto_route_rejects_a_route_below_the_agreement_gate(tiny_checkpoint, monkeypatch):
    from infer import classifier as classifier_module

    monkeypatch.setattr(classifier_module, "available_routes", lambda device: ["bf16", "fp32"])
    monkeypatch.setattr(Classifier, "agreement", lambda self, other, texts=None: 0.98)
    assert Classifier.from_pretrained(tiny_checkpoint, route="auto").route == "fp32"
    monkeypatch.setattr(Classifier, "agreement", lambda self, other, texts=None: 1.0)
    assert Classifier.from_pretrained(tiny_checkpoint, route="auto").route == "bf16"


TRAIN_ONLY = ("train", "datasets", "sklearn", "evaluate", "matplotlib", "accelerate")


def test_infer_runs_without_train_or_its_dependencies(tiny_checkpoint, tmp_path):
    """`import infer`, `infer.classify` (with evidence), the infer CLI and the analyst modules import no `train` module
    and need no train-only package."""
    import os
    import subprocess
    import sys

    from synthetic_data import REPO

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "NATO drills", "issues": [], "stance": "neutral"}) + "\n")
    # An application installs the light runtime only: make the train-only packages uninstalled (a None entry
    # in sys.modules makes `import x` fail and `importlib.util.find_spec(x)` return None). Without this,
    # transformers itself imports some of them whenever they are installed (accelerate; sklearn in 5.17's
    # generation utilities), which says nothing about what the runtime needs.
    code = f"""
import sys
for name in {TRAIN_ONLY[1:]!r}:
    sys.modules[name] = None
import infer
infer.classify("NATO drills near the border", model={str(tiny_checkpoint)!r})
infer.Classifier.from_pretrained({str(tiny_checkpoint)!r}, route="fp32").classify(["NATO drills. Sanctions."], explain=True)
import infer.cli, infer.stream, infer.selection, infer.corpus_report
from infer.__main__ import parse_args
from infer.cli import main
assert main(parse_args([{str(src)!r}, "--model", {str(tiny_checkpoint)!r}, "-o", {str(tmp_path / 'out.jsonl')!r},
                        "--no-progress", "--route", "fp32"])) == 0
# --report's plots need the `report` extra: without matplotlib the counts are still written, then a clear error
assert main(parse_args([{str(src)!r}, "--model", {str(tiny_checkpoint)!r}, "-o", {str(tmp_path / 'out2.jsonl')!r},
                        "--report", {str(tmp_path / 'rep')!r}, "--no-progress", "--route", "fp32"])) == 2
bad = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in {TRAIN_ONLY!r} and mod is not None)
print("IMPORTED", bad)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "IMPORTED []" in proc.stdout, proc.stdout
    assert (tmp_path / "out.jsonl").is_file() and (tmp_path / "rep" / "summary.json").is_file()
    assert "pip install 'security-talks-classifier[report]'" in proc.stderr


@pytest.mark.parametrize("flags, routes", [
    ("fpu avx2", ["fp32"]),
    ("avx2 avx512f avx512_vnni", ["fp32"]),
    ("avx2 avx_vnni", ["fp32"]),
    ("avx2 avx512f avx512_vnni avx512_bf16", ["bf16", "fp32"]),
    ("amx_bf16 amx_int8", ["bf16", "fp32"]),
])
def test_available_routes_from_cpu_flags(monkeypatch, flags, routes):
    import torch

    from infer import hardware
    from infer.routes import available_routes

    monkeypatch.setattr(hardware, "cpu_features", lambda: hardware.features_from_cpuinfo(f"flags\t\t: {flags}\n"))
    assert available_routes(torch.device("cpu")) == routes


def test_windows_overlap_by_the_stride(clf):
    short = Classifier(clf.model, clf.tokenizer, clf.schema, clf.thresholds, clf.device, max_length=16, stride=4)
    text = " ".join(f"NATO drills {i}." for i in range(30))
    windows, owner = short._windows([text])
    assert len(windows) > 2 and set(owner) == {0}
    special = set(clf.tokenizer.all_special_ids)
    content = [[t for t in w if t not in special] for w in windows]
    for left, right in zip(content, content[1:]):
        assert left[-4:] == right[:4]  # each window repeats the last `stride` tokens of the one before
    ids = clf.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert [t for w in content[:1] for t in w] + [t for w in content[1:] for t in w[4:]] == ids


def test_stance_is_the_token_weighted_mean_over_windows(clf, monkeypatch):
    """A text whose windows disagree: the long window's stance outweighs the short one's."""
    short = Classifier(clf.model, clf.tokenizer, clf.schema, clf.thresholds, clf.device, max_length=16, stride=4)
    for n in range(3, 12):  # the shortest text that needs two windows: a long first one, a short second one
        text = " ".join(f"NATO drills {i}." for i in range(n))
        windows, _ = short._windows([text])
        if len(windows) == 2:
            break
    assert len(windows) == 2
    n0, n1 = len(windows[0]), len(windows[1])
    assert n0 > n1
    logits = np.zeros((2, 8), dtype=np.float32)
    logits[0, :5], logits[1, :5] = [2, -2, 0, 0, 0], [-2, 3, 0, 0, 0]   # issue logits
    logits[0, 5:], logits[1, 5:] = np.log([0.7, 0.2, 0.1]), np.log([0.1, 0.8, 0.1])  # favor vs against
    monkeypatch.setattr(short, "_logits", lambda w, batch_size: logits)
    pred = short.classify(text)
    favor = (0.7 * n0 + 0.1 * n1) / (n0 + n1)
    against = (0.2 * n0 + 0.8 * n1) / (n0 + n1)
    assert pred.stance_scores["favor"] == pytest.approx(favor, abs=1e-5)
    assert pred.stance_scores["against"] == pytest.approx(against, abs=1e-5)
    assert pred.stance == ("favor" if favor > against else "against")
    sig = 1 / (1 + np.exp(-np.array([2.0, 3.0])))
    assert pred.issue_scores["expansion"] == pytest.approx(sig[0], abs=1e-5)  # max over windows
    assert pred.issue_scores["missiles"] == pytest.approx(sig[1], abs=1e-5)
    assert pred.windows == 2


def _pred(text, stance, scores, issue=0.1):
    names = ("favor", "against", "neutral")
    return Prediction(text=text, issues=[], issue_scores={n: issue for n in ("expansion", "missiles", "exercises",
                      "sanctions", "china_alignment")}, stance=stance, stance_scores=dict(zip(names, scores)))


def test_classify_document_breaks_stance_ties_by_summed_probability(clf, monkeypatch):
    seen = {}

    def fake(parts, batch_size=32, explain=False):
        seen["parts"] = parts
        return [_pred(parts[0], "favor", (0.4, 0.35, 0.25)), _pred(parts[1], "against", (0.05, 0.9, 0.05))]

    monkeypatch.setattr(clf, "classify", fake)
    doc = clf.classify_document("First paragraph.\n\nSecond paragraph.")
    assert seen["parts"] == ["First paragraph.", "Second paragraph."]
    assert doc.stance_distribution == {"favor": 0.5, "against": 0.5, "neutral": 0.0}
    assert doc.stance == "against"  # one vote each; against has more probability mass (1.25 vs 0.45)


def test_classify_document_falls_back_to_single_newlines(clf, monkeypatch):
    seen = {}

    def fake(parts, batch_size=32, explain=False):
        seen["parts"] = parts
        return [_pred(p, "neutral", (0.1, 0.1, 0.8)) for p in parts]

    monkeypatch.setattr(clf, "classify", fake)
    clf.classify_document("Headline\nFirst line of the body.\n   Second line.  ")  # no blank line anywhere
    assert seen["parts"] == ["Headline", "First line of the body.", "Second line."]
    clf.classify_document("A\nB\n\nC")  # blank lines present: they split, single newlines stay
    assert seen["parts"] == ["A\nB", "C"]
    clf.classify_document("One paragraph only.")
    assert seen["parts"] == ["One paragraph only."]


def test_bytes_must_be_decoded_first(clf):
    with pytest.raises(TypeError, match=r"texts is bytes: decode it to str first"):
        clf.classify(b"NATO drills")
    with pytest.raises(TypeError, match=r"texts\[1\] is bytes: decode it to str first"):
        clf.classify(["ok", b"NATO drills"])


@pytest.mark.parametrize("env, expected", [
    ({}, ["AMX-BF16", "AVX2", "AVX512-BF16", "AVX512-VNNI", "AVX512F"]),
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, ["AVX2"]),
    ({"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}, ["AVX2", "AVX512-VNNI", "AVX512F"]),
    ({"ATEN_CPU_CAPABILITY": "avx2"}, ["AVX2"]),
    ({"ATEN_CPU_CAPABILITY": "default"}, []),
    ({"ONEDNN_MAX_CPU_ISA": "ALL", "ATEN_CPU_CAPABILITY": "avx512"}, ["AMX-BF16", "AVX2", "AVX512-BF16",
                                                                      "AVX512-VNNI", "AVX512F"]),
])
def test_isa_caps_in_the_environment_remove_cpu_features(env, expected):
    """ONEDNN_MAX_CPU_ISA / ATEN_CPU_CAPABILITY emulate an older CPU: `auto` then chooses what it would."""
    from infer import hardware

    found = hardware.features_from_cpuinfo("flags\t: avx2 avx512f avx512_vnni avx512_bf16 amx_bf16\n")
    assert sorted(hardware.apply_isa_caps(found, env)) == expected


def test_a_config_whose_labels_do_not_match_the_head_is_one_line(tiny_checkpoint, tmp_path):
    import json
    import shutil

    from infer import load

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["label_schema"]["issues"].append("cyber")
    config["issue_thresholds"]["cyber"] = 0.5
    names = [f"issue/{n}" for n in config["label_schema"]["issues"]] + [
        f"stance/{n}" for n in config["label_schema"]["stance"]]
    config["id2label"] = {str(i): n for i, n in enumerate(names)}
    config["label2id"] = {n: i for i, n in enumerate(names)}
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config.json names 9 labels \(id2label\) but the weights' head") as info:
        load(str(ckpt), route="fp32")
    assert "\n" not in str(info.value)
