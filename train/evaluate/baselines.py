"""Baselines reported beside the fine-tuned model, fitted on the same train split.

Each baseline has `fit(texts, labels)` and `predict_scores(texts) -> (n, num_labels)` in head order
(issue probabilities, then stance probabilities), so the report scores them exactly like the model.

- `majority`: the prior: issue scores are training frequencies, stance is the most frequent class.
- `tfidf_logreg`: TF-IDF word 1-2-grams + char 2-5-grams, one-vs-rest logistic regression for the
  issues and a multinomial logistic regression for the stance (class-balanced).
- `embeddings_logreg`: the frozen backbone's mean-pooled embeddings (`train.evaluate.embeddings`) + the same
  logistic regressions.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from threadpoolctl import threadpool_limits

from infer.labels import LabelSchema
from train.evaluate.embeddings import E5_PREFIX, FrozenEncoder

logger = logging.getLogger(__name__)


class _LogRegHeads:
    """One balanced logistic regression per issue + one multinomial regression for the stance."""

    def __init__(self, schema: LabelSchema, c: float = 4.0, seed: int = 0):
        self.schema, self.c, self.seed = schema, c, seed

    def fit(self, x, labels: np.ndarray) -> None:
        with threadpool_limits(limits=1):  # ~1k rows: threads only add overhead (and contend with torch's)
            self._fit(x, labels)

    def _fit(self, x, labels: np.ndarray) -> None:
        issues, stance = self.schema.split(labels)
        self.issue_models = []
        for y in issues.T:
            if y.min() == y.max():  # a label absent (or always present) in train: constant score
                self.issue_models.append(float(y[0]))
                continue
            m = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000, random_state=self.seed)
            self.issue_models.append(m.fit(x, y))
        self.stance_model = LogisticRegression(C=self.c, class_weight="balanced", max_iter=2000,
                                               random_state=self.seed).fit(x, stance.argmax(1))

    def predict(self, x) -> np.ndarray:
        with threadpool_limits(limits=1):
            return self._predict(x)

    def _predict(self, x) -> np.ndarray:
        n = x.shape[0]
        out = np.zeros((n, self.schema.num_labels))
        issues, stance = out[:, self.schema.issue_slice], out[:, self.schema.stance_slice]  # views into out
        for j, m in enumerate(self.issue_models):
            issues[:, j] = m if isinstance(m, float) else m.predict_proba(x)[:, 1]
        stance[:, self.stance_model.classes_] = self.stance_model.predict_proba(x)
        return out


class MajorityBaseline:
    name = "majority"

    def __init__(self, schema: LabelSchema):
        self.schema = schema

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> MajorityBaseline:
        issues, stance = self.schema.split(labels)
        self.scores = np.zeros(self.schema.num_labels)
        self.scores[self.schema.issue_slice] = issues.mean(0)
        self.scores[self.schema.stance_slice][int(stance.sum(0).argmax())] = 1.0  # a view: writes into scores
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

    def __init__(self, schema: LabelSchema, backbone: str, seed: int = 0, batch_size: int = 16,
                 max_length: int = 256, prefix: str = E5_PREFIX, cache: bool = True):
        self.schema, self.backbone = schema, backbone
        self.encoder = FrozenEncoder(backbone, batch_size=batch_size, max_length=max_length, prefix=prefix,
                                     cache=cache)
        self.heads = _LogRegHeads(schema, c=10.0, seed=seed)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.embed(texts)

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> EmbeddingsLogRegBaseline:
        self.heads.fit(self.embed(texts), labels)
        return self

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.heads.predict(self.embed(texts))


def build_baselines(names: Sequence[str], schema: LabelSchema, backbone: str, seed: int = 0,
                    vector_cache: bool = True) -> list:
    """Instantiate baselines by name; unknown names list the known ones. `vector_cache`: the frozen
    features of `embeddings_logreg` are kept in (and reused from) `train.evaluate.vector_store`."""
    factories = {
        "majority": lambda: MajorityBaseline(schema),
        "tfidf_logreg": lambda: TfidfLogRegBaseline(schema, seed=seed),
        "embeddings_logreg": lambda: EmbeddingsLogRegBaseline(schema, backbone, seed=seed, cache=vector_cache),
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(factories)}")
    return [factories[n]() for n in names]
