"""Evidence: which sentence of a paragraph drove each decision (leave-one-sentence-out occlusion).

For a paragraph of n sentences the classifier scores n + 1 texts: the paragraph, and the paragraph
with each sentence removed in turn (all in one length-sorted batched pass, so the cost is about
n + 1 forward passes of shorter texts, and the figures are exact, not sampled or approximated by
gradients). A sentence's `delta` for a label is score(paragraph) - score(paragraph without it): how
much of the (calibrated) score that sentence holds up. For the predicted stance and each predicted
issue the evidence is the sentence(s) with the largest delta.

A one-sentence paragraph follows the same rule: removing its only sentence leaves an empty text, which
the model scores as its special tokens alone (its prior). The evidence is that sentence, and the delta
is score(paragraph) - score(empty), comparable with the deltas of longer paragraphs.

Sentences are split by a regular expression (`split_sentences`) rather than a segmenter package:
the light runtime takes no new dependency, and occlusion needs only a good-enough split, since a
badly split sentence merely makes the evidence a little longer or shorter.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from infer.classifier import Classifier
    from infer.prediction import Prediction

# Stops that end a sentence whatever follows (no space is written after them in their scripts):
# CJK 。！？ and half/full-width variants, Arabic question mark ؟, Urdu full stop ۔, Devanagari danda
# । and double danda ॥, Armenian full stop ։, Ethiopic full stop ።.
_HARD_STOPS = "。！？｡．؟۔।॥։።"
# Stops that end a sentence only before whitespace (or the end): . ! ? and the ellipsis … (so "3.5",
# "e.g.x" or "U.S.-led" are not split), and not before a lower-case letter ("U.S. officials said").
_SOFT_STOPS = ".!?…"
# Closing quotes and brackets that belong to the sentence they end: ." ?» 。」 !) ...
_CLOSERS = "\"'”’»›」』）)\\]】〉》〕"
_BOUNDARY = re.compile(f"(?:[{_HARD_STOPS}]+|[{re.escape(_SOFT_STOPS)}]+)[{re.escape(_CLOSERS)}]*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`; a span includes the whitespace that follows it.

    Example:
        >>> [text[a:b] for text in ["Talks began. NATO said no!"] for a, b in sentence_spans(text)]
        ['Talks began. ', 'NATO said no!']
    """
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if m.group()[0] in _SOFT_STOPS:
            rest = text[end:]
            if rest and not rest[0].isspace():
                continue  # 3.5, U.S.-led, "?!x"
            nxt = rest.lstrip()[:1]
            if nxt and nxt.islower():
                continue  # an abbreviation: "U.S. officials", "approx. ten"
        while end < len(text) and text[end].isspace():
            end += 1
        if text[start:end].strip():
            spans.append((start, end))
        start = end
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped (see the module docstring for the rules).

    Example:
        >>> split_sentences('He said: "No." 北约拒绝了。俄方表示失望！ هل ستنجح المحادثات؟ نعم')
        ['He said: "No."', '北约拒绝了。', '俄方表示失望！', 'هل ستنجح المحادثات؟', 'نعم']
    """
    return [text[a:b].strip() for a, b in sentence_spans(text)]


def _without(text: str, spans: list[tuple[int, int]], i: int) -> str:
    return text[:spans[i][0]] + text[spans[i][1]:]


def add_evidence(clf: Classifier, preds: Sequence[Prediction], batch_size: int = 16, top: int = 1) -> list[Prediction]:
    """Return `preds` with `evidence` filled in (see the module docstring).

    Args:
        clf: the classifier that made `preds` (its calibrated scores are the ones explained).
        preds: predictions of `clf.classify` (their `text` is re-scored with each sentence left out).
        batch_size: texts per forward pass.
        top: how many sentences to give per label (the largest deltas first).

    Returns:
        New `Prediction`s whose `evidence` is
        `{"sentences": [str], "stance": [{"sentence", "index", "delta"}], "issues": {issue: [...]}}`.
    """
    schema = clf.schema
    k = len(schema.issues)
    spans = [sentence_spans(p.text) for p in preds]
    variants = [_without(p.text, s, i) for p, s in zip(preds, spans) for i in range(len(s))]
    scores = clf.predict_scores(variants, batch_size=batch_size) if variants else np.zeros((0, schema.num_labels))
    out, row = [], 0
    for pred, sp in zip(preds, spans):
        n = len(sp)
        left_out = scores[row:row + n]  # (n, num_labels): the paragraph without sentence i
        row += n
        full = np.array([pred.issue_scores[name] for name in schema.issues]
                        + [pred.stance_scores[name] for name in schema.stance])
        sentences = [pred.text[a:b].strip() for a, b in sp]

        def best(column: int) -> list[dict]:
            delta = full[column] - left_out[:, column]
            order = np.argsort(-delta, kind="stable")[:top]
            return [{"sentence": sentences[i], "index": int(i), "delta": round(float(delta[i]), 6)} for i in order]

        evidence = {
            "sentences": sentences,
            "stance": best(k + schema.stance.index(pred.stance)),
            "issues": {name: best(schema.issues.index(name)) for name in pred.issues},
        }
        out.append(replace(pred, evidence=evidence))
    return out
