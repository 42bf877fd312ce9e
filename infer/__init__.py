"""Tag news paragraphs with issues and stance using a checkpoint trained by `python -m train`.

Example:
    >>> from infer import classify
    >>> pred = classify("NATO rejected Moscow's demand to halt enlargement.")  # doctest: +SKIP
    >>> pred.issues, pred.stance  # doctest: +SKIP
    (['expansion'], 'against')
"""

from __future__ import annotations

import threading
from typing import Sequence, overload

from infer.classifier import Classifier, default_model_path
from infer.labels import LabelSchema
from infer.prediction import DocumentPrediction, Prediction

__all__ = ["classify", "load", "Classifier", "Prediction", "DocumentPrediction", "LabelSchema"]

_CACHE: dict[tuple[str, str | None, str], Classifier] = {}
_CACHE_LOCK = threading.Lock()


def load(model: str | None = None, *, device: str | None = None, route: str = "auto") -> Classifier:
    """Load (once per model, device and route) and return a `Classifier`.

    Args:
        model: a run directory, a local checkpoint or a Hugging Face model id. None: `$STC_MODEL`,
            else the default config's latest run `runs/default/`.
        device: `cpu`, `cuda`, `cuda:1`, ... (default: CUDA if available, else CPU).
        route: `auto`, `fp32`, `bf16` or `fp16` (see `infer.routes`).

    Example:
        >>> clf = load("runs/default")  # doctest: +SKIP
        >>> clf.classify_document(article_text).stance_distribution  # doctest: +SKIP
    """
    key = (str(model or default_model_path()), device, route)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Classifier.from_pretrained(key[0], device=device, route=route)
        return _CACHE[key]


@overload
def classify(texts: str, model: str | None = None, *, batch_size: int = 16, device: str | None = None,
             explain: bool = False) -> Prediction: ...
@overload
def classify(texts: Sequence[str], model: str | None = None, *, batch_size: int = 16,
             device: str | None = None, explain: bool = False) -> list[Prediction]: ...


def classify(texts, model=None, *, batch_size=16, device=None, explain=False):
    """Tag a text (returns one `Prediction`) or a list of texts (returns a list in the same order).

    Args:
        texts: a paragraph, or a list of paragraphs, in any language of the backbone.
        model: see `load`.
        batch_size: texts per forward pass.
        device: see `load`.
        explain: also give `Prediction.evidence`, the sentence behind each decision (`infer.evidence`).

    Example:
        >>> preds = classify(["Sanctions on Russian banks were announced.", "Учения у границы."])  # doctest: +SKIP
        >>> [p.to_dict()["issues"] for p in preds]  # doctest: +SKIP
        [['sanctions'], ['exercises']]
    """
    return load(model, device=device).classify(texts, batch_size=batch_size, explain=explain)
