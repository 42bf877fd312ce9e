"""Evidence by leave-one-sentence-out occlusion: the sentence splitter, the chosen sentence, exactness, CLI."""

import json

import numpy as np
import pytest

from infer import Classifier
from infer.evidence import add_evidence, split_sentences


@pytest.mark.parametrize("text, expected", [
    ("NATO said no. Moscow insisted!  Why? Talks go on",
     ["NATO said no.", "Moscow insisted!", "Why?", "Talks go on"]),
    ('He said: "We will not move." Then he left.', ['He said: "We will not move."', "Then he left."]),
    ("U.S. officials met at 3.5 p.m. in Geneva. The U.S.-led bloc agreed.",
     ["U.S. officials met at 3.5 p.m. in Geneva.", "The U.S.-led bloc agreed."]),
    ("Well... we will see… Or not.", ["Well... we will see…", "Or not."]),
    ("北约拒绝了。俄方表示失望！会谈继续吗？", ["北约拒绝了。", "俄方表示失望！", "会谈继续吗？"]),
    ("「不会扩张。」他说。", ["「不会扩张。」", "他说。"]),
    ("هل ستنجح المحادثات؟ لا أحد يعرف۔ ربما", ["هل ستنجح المحادثات؟", "لا أحد يعرف۔", "ربما"]),
    ("नाटो ने मना किया। रूस नाराज़ है॥ आगे क्या", ["नाटो ने मना किया।", "रूस नाराज़ है॥", "आगे क्या"]),
    ("ՆԱՏՕ-ն մերժեց։ Ռուսաստանը դժգոհ է։", ["ՆԱՏՕ-ն մերժեց։", "Ռուսաստանը դժգոհ է։"]),
    ("ኔቶ አልተቀበለም። ሩሲያ ተቆጣች።", ["ኔቶ አልተቀበለም።", "ሩሲያ ተቆጣች።"]),
    ("(Reuters) Talks ended (without a deal.) Next week?", ["(Reuters) Talks ended (without a deal.)", "Next week?"]),
    ("One sentence without a stop", ["One sentence without a stop"]),
])
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


class _KeywordScorer:
    """Stands in for a model: sanctions score 0.9 iff the text mentions sanctions; favor iff 'insists'."""

    def __init__(self, clf):
        self.clf, self.calls = clf, []

    def __call__(self, texts, batch_size=32, calibrated=True):
        self.calls.append(list(texts))
        k = len(self.clf.schema.issues)
        out = np.full((len(texts), self.clf.schema.num_labels), 0.1)
        for i, t in enumerate(texts):
            out[i, self.clf.schema.issues.index("sanctions")] = 0.9 if "sanction" in t.lower() else 0.1
            favor = 0.8 if "insists" in t else 0.2
            out[i, k:] = [favor, (1 - favor) / 2, (1 - favor) / 2]
        return out


@pytest.fixture(scope="module")
def clf(tiny_checkpoint):
    return Classifier.from_pretrained(tiny_checkpoint, route="fp32")


def test_evidence_names_the_sentence_that_carries_the_topic(clf, monkeypatch):
    scorer = _KeywordScorer(clf)
    monkeypatch.setattr(clf, "predict_scores", scorer)
    monkeypatch.setattr(clf, "_scores_and_windows",
                        lambda texts, batch_size, calibrated=True: (scorer(texts), np.ones(len(texts), int)))
    text = "The delegations met in Geneva. Washington announced new sanctions on banks. Moscow insists on talks."
    pred = clf.classify(text, explain=True)
    assert pred.issues == ["sanctions"] and pred.stance == "favor"
    ev = pred.evidence
    assert ev["sentences"] == ["The delegations met in Geneva.", "Washington announced new sanctions on banks.",
                               "Moscow insists on talks."]
    assert ev["issues"]["sanctions"] == [{"sentence": ev["sentences"][1], "index": 1, "delta": pytest.approx(0.8)}]
    assert ev["stance"][0]["index"] == 2 and ev["stance"][0]["delta"] == pytest.approx(0.6)
    assert len(scorer.calls[-1]) == 3  # one batched call with the n = 3 leave-one-out texts
    assert "evidence" in pred.to_dict() and "evidence" not in clf.classify(text).to_dict()


def test_one_sentence_paragraph_is_scored_against_the_empty_text(clf, monkeypatch):
    scorer = _KeywordScorer(clf)
    monkeypatch.setattr(clf, "predict_scores", scorer)
    pred = add_evidence(clf, [clf.classify("New sanctions on banks")])[0]
    assert scorer.calls[-1] == [""]
    assert pred.evidence["sentences"] == ["New sanctions on banks"]
    assert pred.evidence["stance"][0]["sentence"] == "New sanctions on banks"


def test_deltas_are_exact_on_the_real_forward_pass(clf):
    text = "NATO drills near the border. Sanctions on Russian banks! Beijing backs Moscow?"
    pred = clf.classify([text], explain=True)[0]
    sentences = pred.evidence["sentences"]
    assert len(sentences) == 3
    k = len(clf.schema.issues)
    col = k + clf.schema.stance.index(pred.stance)
    full = clf.predict_scores([text])[0, col]
    left_out = clf.predict_scores(["Sanctions on Russian banks! Beijing backs Moscow?",
                                   "NATO drills near the border. Beijing backs Moscow?",
                                   "NATO drills near the border. Sanctions on Russian banks! "])[:, col]
    best = int(np.argmax(full - left_out))
    assert pred.evidence["stance"][0]["index"] == best
    assert pred.evidence["stance"][0]["delta"] == pytest.approx(full - left_out[best], abs=1e-5)
    assert set(pred.evidence["issues"]) == set(pred.issues)
    json.dumps(pred.to_dict())


def test_cli_explain_adds_evidence(tiny_checkpoint, tmp_path, capsys):
    from infer.__main__ import parse_args
    from infer.cli import main

    src = tmp_path / "in.txt"
    src.write_text("NATO drills. Sanctions on banks.\nBeijing backs Moscow\n")
    assert main(parse_args(["--model", str(tiny_checkpoint), str(src), "--explain", "--no-progress",
                            "--route", "fp32"])) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["evidence"]["sentences"]) for r in rows] == [2, 1]
