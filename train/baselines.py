"""Baselines reported beside the fine-tuned model, fitted on the same train split.

Each baseline has `fit(texts, labels)` and `predict_scores(texts) -> (n, num_labels)` in head order
(issue probabilities, then stance probabilities), so the report scores them exactly like the model.

- `majority`: the prior: issue scores are training frequencies, stance is the most frequent class.
- `tfidf_logreg`: TF-IDF word 1-2-grams + char 2-5-grams, one-vs-rest logistic regression for the
  issues and a multinomial logistic regression for the stance (class-balanced).
- `embeddings_logreg`: the frozen backbone's mean-pooled embeddings + the same logistic regressions.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from infer.labels import LabelSchema

logger = logging.getLogger(__name__)


class _LogRegHeads:
    """One balanced logistic regression per issue + one multinomial regression for the stance."""

    def __init__(self, schema: LabelSchema, c: float = 4.0, seed: int = 0):
        self.schema, self.c, self.seed = schema, c, seed

    def fit(self, x, labels: np.ndarray) -> None:
        k = len(self.schema.issues)
        self.issue_models = []
        for j in range(k):
            y = labels[:, j]
            if y.min() == y.max():  # a label absent (or always present) in train: constant score
                self.issue_models.append(float(y[0]))
                continue
            m = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000, random_state=self.seed)
            self.issue_models.append(m.fit(x, y))
        self.stance_model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000,
                                               random_state=self.seed).fit(x, labels[:, k:].argmax(1))

    def predict(self, x) -> np.ndarray:
        n = x.shape[0]
        k = len(self.schema.issues)
        out = np.zeros((n, self.schema.num_labels))
        for j, m in enumerate(self.issue_models):
            out[:, j] = m if isinstance(m, float) else m.predict_proba(x)[:, 1]
        proba = self.stance_model.predict_proba(x)
        out[:, k + self.stance_model.classes_] = proba
        return out


class MajorityBaseline:
    name = "majority"

    def __init__(self, schema: LabelSchema):
        self.schema = schema

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> MajorityBaseline:
        k = len(self.schema.issues)
        self.scores = np.zeros(self.schema.num_labels)
        self.scores[:k] = labels[:, :k].mean(0)
        self.scores[k + int(labels[:, k:].sum(0).argmax())] = 1.0
        return self

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.scores, (len(texts), 1))


class TfidfLogRegBaseline:
    name = "tfidf_logreg"

    def __init__(self, schema: LabelSchema, seed: int = 0):
        self.schema = schema
        self.features = FeatureUnion([
            ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                     max_features=200_000)),
        ])
        self.heads = _LogRegHeads(schema, seed=seed)

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> TfidfLogRegBaseline:
        self.heads.fit(self.features.fit_transform(texts), labels)
        return self

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.heads.predict(self.features.transform(texts))


class EmbeddingsLogRegBaseline:
    """Logistic regressions on the frozen backbone's mean-pooled, L2-normalized embeddings."""

    name = "embeddings_logreg"

    def __init__(self, schema: LabelSchema, backbone: str, seed: int = 0, batch_size: int = 32,
                 max_length: int = 256, prefix: str = "query: "):
        self.schema, self.backbone, self.batch_size = schema, backbone, batch_size
        self.max_length, self.prefix = max_length, prefix
        self.heads = _LogRegHeads(schema, c=10.0, seed=seed)
        self._model = self._tokenizer = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from train.backbone import load_pretrained

        if self._model is None:
            self._tokenizer = load_pretrained(self.backbone, AutoTokenizer)
            self._model = load_pretrained(self.backbone, AutoModel).eval()
        out = []
        order = np.argsort([len(t) for t in texts])
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self._tokenizer([self.prefix + texts[i] for i in idx], padding=True, truncation=True,
                                      max_length=self.max_length, return_tensors="pt")
                hidden = self._model(**enc).last_hidden_state  # (batch, seq, hidden)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                out.append((idx, torch.nn.functional.normalize(pooled, dim=-1).numpy()))
        emb = np.zeros((len(texts), out[0][1].shape[1]), dtype=np.float32)
        for idx, vectors in out:
            emb[idx] = vectors
        return emb

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> EmbeddingsLogRegBaseline:
        self.heads.fit(self.embed(texts), labels)
        return self

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.heads.predict(self.embed(texts))


def build_baselines(names: Sequence[str], schema: LabelSchema, backbone: str, seed: int = 0) -> list:
    """Instantiate baselines by name; unknown names list the known ones."""
    factories = {
        "majority": lambda: MajorityBaseline(schema),
        "tfidf_logreg": lambda: TfidfLogRegBaseline(schema, seed=seed),
        "embeddings_logreg": lambda: EmbeddingsLogRegBaseline(schema, backbone, seed=seed),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(factories)}")
    return [factories[n]() for n in names]
