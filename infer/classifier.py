"""`Classifier`: a trained checkpoint, its labels and thresholds, and a fast, thread-safe `classify`.

Texts longer than the model's window are split into overlapping windows (never truncated); issue
scores are the max over windows and stance probabilities the token-weighted mean. Batches are
sorted by length so padding stays small, run under `torch.inference_mode()`, and a BERT head's last
layer is computed for the one token the pooler reads (`infer.first_token`).
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
import threading
from pathlib import Path
from typing import Sequence, overload

import numpy as np
import torch

from infer.calibration import Calibration
from infer.first_token import first_token_logits, supports_first_token
from infer.labels import LabelSchema
from infer.prediction import DocumentPrediction, Prediction
from infer.routes import PROBE_TEXTS, apply_route, available_routes, check_route

logger = logging.getLogger(__name__)

MODEL_ENV = "STC_MODEL"
# A fast route is used only if it makes the same decisions as fp32 on at least this share of the probe
# set's (text, label) decisions. 0.97 let through an int8 model (a route since removed) that lost 0.067
# stance macro-F1 on test (2 of 72 probe decisions differed); bf16 agreed on all of them on every
# checkpoint measured.
MIN_ROUTE_AGREEMENT = 0.99
DEFAULT_RUN = Path("runs") / "default"
_PARAGRAPH_SPLIT = re.compile(r"\n\s*\n|\r\n\s*\r\n")


def visible(text: str) -> bool:
    """Whether `text` has a character that is not whitespace, a format character (zero-width space,
    joiners, BOM: Unicode category Cf) or a control character.

    Example:
        >>> visible("\u200b\ufeff "), visible("NATO")
        (False, True)
    """
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in text)


def check_texts(texts: Sequence[object]) -> list[str]:
    """Raise a TypeError/ValueError naming the index of the first unusable text."""
    out = []
    for i, text in enumerate(texts):
        if isinstance(text, (bytes, bytearray)):
            raise TypeError(f"texts[{i}] is bytes: decode it to str first, e.g. data.decode('utf-8')")
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
        if not visible(text):
            raise ValueError(f"texts[{i}] is empty or holds only whitespace or invisible characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"texts[{i}] is not valid Unicode ({exc.reason} at position {exc.start})") from exc
        out.append(text)
    return out


def default_model_path() -> str:
    """`$STC_MODEL`, else `runs/default/` if it holds a finished run, else a clear error."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return env
    if (DEFAULT_RUN / "config.json").is_file():
        return str(DEFAULT_RUN)
    raise FileNotFoundError(
        f"No model given and no trained run at {DEFAULT_RUN}/. Train one with "
        "`python -m train --config configs/default.yaml`, set the environment variable "
        f"{MODEL_ENV}, or pass model=<run directory or Hugging Face model id>."
    )


def _looks_like_hub_id(name: str) -> bool:
    """`ORG/NAME` or `NAME` (what the Hub could resolve), not a path."""
    return (not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "\\" not in name
            and bool(name.strip("/")))


def _is_damaged_weights(exc: Exception) -> bool:
    return type(exc).__name__ == "SafetensorError" or "deserializ" in str(exc) or "incomplete" in str(exc)


class Classifier:
    """A loaded checkpoint ready to tag paragraphs. Build it with `infer.load(...)`.

    Example:
        >>> clf = Classifier.from_pretrained("runs/default")  # doctest: +SKIP
        >>> clf.classify("NATO rejected Moscow's demand to halt enlargement.").issues  # doctest: +SKIP
        ['expansion']
    """

    def __init__(self, model, tokenizer, schema: LabelSchema, thresholds: Sequence[float],
                 device: torch.device, route: str = "fp32", max_length: int | None = None, stride: int = 64,
                 calibration: Calibration | None = None, first_token: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.schema = schema
        # `thresholds` are on the uncalibrated sigmoid (config.json's issue_thresholds); `self.thresholds`
        # are the same cuts on the calibrated scores that predict_scores returns (infer.calibration).
        self.calibration = calibration or Calibration()
        self.raw_thresholds = np.asarray(thresholds, dtype=np.float64)
        self.thresholds = self.calibration.issue_thresholds(self.raw_thresholds, schema.issues)
        self.device = device
        self.route = route
        limit = getattr(model.config, "max_position_embeddings", 512) - 2
        self.max_length = min(max_length or tokenizer.model_max_length, limit, 512)
        self.stride = min(stride, self.max_length // 2)
        # the last layer for the pooler's token only (infer.first_token): same logits, 1/13 fewer FLOPs for
        # the default checkpoint; `first_token=False` runs the model's own forward.
        self._first_token = first_token and supports_first_token(model)
        self._tokenizer_lock = threading.Lock()  # fast tokenizers are not safe to share across threads

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, device: str | torch.device | None = None,
                        route: str = "auto") -> Classifier:
        """Load a run directory, a local checkpoint or a Hub model id trained by this package.

        Args:
            model: path or model id.
            device: `cpu`, `cuda`, ... (default: CUDA if available, else CPU).
            route: `auto` (fastest native route that agrees with fp32 on a probe set) or one of
                `fp32`, `bf16`, `fp16` to force it.
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        check_route(route)
        path = str(model)
        local = Path(path).expanduser().exists()
        if local and not (Path(path).expanduser() / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a checkpoint or finished run directory")
        if not local and not _looks_like_hub_id(path):
            raise FileNotFoundError(f"model directory {path} does not exist")
        try:
            config = AutoConfig.from_pretrained(path)
        except OSError as exc:
            if local:
                raise
            raise FileNotFoundError(
                f"model {path}: no such local directory, and it could not be fetched from the Hugging Face Hub "
                f"as a model id (offline, or no such model): {str(exc).splitlines()[0]}") from exc
        schema = LabelSchema.from_model_config(config)
        thresholds = getattr(config, "issue_thresholds", None) or {}
        missing = [n for n in schema.issues if n not in thresholds]
        if missing:
            raise ValueError(f"{path}: config.json issue_thresholds lacks {missing}; was training finished?")
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            fp32 = AutoModelForSequenceClassification.from_pretrained(path, config=config).eval()
        except Exception as exc:  # safetensors raises its own SafetensorError (an Exception) on a cut file
            if local and "ignore_mismatched_sizes" in str(exc):
                raise ValueError(f"{path}: config.json names {config.num_labels} labels (id2label) but the weights' "
                                 "head has another number of outputs: config.json and model.safetensors are not "
                                 "from the same training; restore the checkpoint's own config.json") from None
            if not local or not _is_damaged_weights(exc):
                raise
            weights = Path(path) / "model.safetensors"
            raise ValueError(f"{weights} is damaged or incomplete ({exc}); re-save the checkpoint "
                             "or download it again") from exc
        tokenizer = AutoTokenizer.from_pretrained(path)
        calibration = Calibration.from_model_config(config, schema.issues)
        clf = cls(fp32, tokenizer, schema, [thresholds[n] for n in schema.issues], device, "fp32",
                  calibration=calibration)
        if route == "auto":
            return clf._fastest_agreeing_route(fp32)
        return clf.with_route(route) if route != "fp32" else clf.to_device()

    def to_device(self) -> Classifier:
        self.model.to(self.device)
        return self

    def with_route(self, route: str) -> Classifier:
        """A new classifier sharing tokenizer and labels, with the model converted for `route`."""
        model = apply_route(self.model, route, self.device)
        return Classifier(model, self.tokenizer, self.schema, self.raw_thresholds, self.device, route,
                          self.max_length, self.stride, self.calibration)

    def agreement(self, other: Classifier, texts: Sequence[str] = PROBE_TEXTS) -> float:
        """Share of (text, label) decisions on which two classifiers agree (issues and stance)."""
        a_issues, a_stance = self.schema.decide(self.predict_scores(list(texts)), self.thresholds)
        b_issues, b_stance = other.schema.decide(other.predict_scores(list(texts)), other.thresholds)
        return float(np.concatenate([(a_issues == b_issues).ravel(), a_stance == b_stance]).mean())

    def _fastest_agreeing_route(self, fp32_model) -> Classifier:
        reference = self.to_device()
        for route in available_routes(self.device):
            if route == "fp32":
                break
            candidate = reference.with_route(route)
            agree = reference.agreement(candidate)
            if agree >= MIN_ROUTE_AGREEMENT:
                logger.info("Route %s: agreement with fp32 %.3f, using it", route, agree)
                return candidate
            logger.warning("Route %s disagrees with fp32 on %.1f%% of probe decisions; not used",
                           route, 100 * (1 - agree))
        logger.info("Route fp32")
        return reference

    # -- core -------------------------------------------------------------------------------------

    def _windows(self, texts: list[str]):
        """Tokenize into windows of at most max_length tokens, overlapping by `stride` tokens."""
        with self._tokenizer_lock:
            enc = self.tokenizer(
                texts, truncation=True, max_length=self.max_length, stride=self.stride,
                return_overflowing_tokens=True, return_attention_mask=False,
            )
        return enc["input_ids"], enc["overflow_to_sample_mapping"]

    @torch.inference_mode()
    def _logits(self, windows: list[list[int]], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(w) for w in windows], kind="stable")  # longest first, little padding
        out = np.empty((len(windows), self.schema.num_labels), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            with self._tokenizer_lock:
                # right padding: absolute position ids must start at the first real token
                batch = self.tokenizer.pad({"input_ids": [windows[i] for i in idx]}, padding_side="right",
                                           return_attention_mask=True, return_tensors="pt")
            ids, mask = batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            logits = first_token_logits(self.model, ids, mask) if self._first_token else None
            if logits is None:
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            out[idx] = logits.float().cpu().numpy()  # (batch, num_labels)
        return out

    def predict_scores(self, texts: list[str], batch_size: int = 16, calibrated: bool = True) -> np.ndarray:
        """Scores (n, num_labels) per text: issue sigmoid max over windows, stance mean over windows.

        `calibrated=False` gives the scores before the checkpoint's calibration (temperature 1, no Platt
        map), to be compared with `raw_thresholds`; the default compares with `thresholds`.
        """
        scores, _ = self._scores_and_windows(texts, batch_size, calibrated)
        return scores

    def predict_scores_and_raw(self, texts: list[str], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """`(predict_scores(texts), predict_scores(texts, calibrated=False))` from one forward pass."""
        windows, owner = self._windows(texts)
        logits = self._logits(windows, batch_size)
        return (self._aggregate(logits, windows, owner, len(texts), calibrated=True)[0],
                self._aggregate(logits, windows, owner, len(texts), calibrated=False)[0])

    def _scores_and_windows(self, texts: list[str], batch_size: int, calibrated: bool = True):
        windows, owner = self._windows(texts)
        return self._aggregate(self._logits(windows, batch_size), windows, owner, len(texts), calibrated)

    def _aggregate(self, logits: np.ndarray, windows, owner, n: int, calibrated: bool):
        """Window logits -> per-text scores (n, num_labels) and the number of windows of each text."""
        if calibrated and not self.calibration.is_identity:
            logits = self.calibration.apply(logits, self.schema.issues, len(self.schema.issues))
        window_scores = self.schema.scores(logits)
        owner = np.asarray(owner)
        weights = np.array([len(w) for w in windows], dtype=np.float64)  # tokens per window
        window_issues, window_stance = self.schema.split(window_scores)
        counts = np.bincount(owner, minlength=n)
        issues = np.zeros((n, len(self.schema.issues)))
        np.maximum.at(issues, owner, window_issues)  # issue: max over the text's windows
        stance = np.zeros((n, len(self.schema.stance)))
        np.add.at(stance, owner, window_stance * weights[:, None])  # stance: token-weighted mean
        return np.concatenate([issues, stance / stance.sum(axis=1, keepdims=True)], axis=1), counts

    def _prediction(self, text: str, row: np.ndarray, windows: int) -> Prediction:
        (issue_row,), (stance_row,) = self.schema.split(row[None, :])
        (on,), (stance,) = self.schema.decide(row[None, :], self.thresholds)
        return Prediction(
            text=text,
            issues=[n for n, keep in zip(self.schema.issues, on) if keep],
            issue_scores={n: round(float(s), 6) for n, s in zip(self.schema.issues, issue_row)},
            stance=self.schema.stance[int(stance)],
            stance_scores={n: round(float(s), 6) for n, s in zip(self.schema.stance, stance_row)},
            windows=int(windows),
        )

    # -- public API -------------------------------------------------------------------------------

    @overload
    def classify(self, texts: str, batch_size: int = 16, explain: bool = False) -> Prediction: ...
    @overload
    def classify(self, texts: Sequence[str], batch_size: int = 16, explain: bool = False) -> list[Prediction]: ...

    def classify(self, texts, batch_size: int = 16, explain: bool = False):
        """Tag one text (returns a `Prediction`) or a list of texts (returns a list, same order).

        `explain=True` fills `Prediction.evidence` by leave-one-sentence-out occlusion (`infer.evidence`):
        about (sentences + 1) times the cost.

        Raises:
            TypeError: an item is not a str (message names its index).
            ValueError: an item is empty, whitespace only, or not valid Unicode.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        single = isinstance(texts, str)
        if isinstance(texts, (bytes, bytearray)):
            raise TypeError("texts is bytes: decode it to str first, e.g. data.decode('utf-8')")
        if texts is None or not (single or isinstance(texts, Sequence)):
            raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
        items = check_texts([texts] if single else list(texts))
        if not items:
            return []
        scores, counts = self._scores_and_windows(items, batch_size)
        preds = [self._prediction(t, row, c) for t, row, c in zip(items, scores, counts)]
        if explain:
            from infer.evidence import add_evidence

            preds = add_evidence(self, preds, batch_size)
        return preds[0] if single else preds

    def classify_document(self, text: str, batch_size: int = 16, explain: bool = False) -> DocumentPrediction:
        """Split a document on blank lines (or single newlines), classify each paragraph, aggregate."""
        check_texts([text])
        parts = [p.strip() for p in _PARAGRAPH_SPLIT.split(text) if p.strip()]
        if len(parts) == 1:
            parts = [p.strip() for p in text.splitlines() if p.strip()]
        paragraphs = self.classify(parts, batch_size=batch_size, explain=explain)
        issue_max = {n: max(p.issue_scores[n] for p in paragraphs) for n in self.schema.issues}
        votes = {n: sum(p.stance == n for p in paragraphs) / len(paragraphs) for n in self.schema.stance}
        mass = {n: sum(p.stance_scores[n] for p in paragraphs) for n in self.schema.stance}
        stance = max(self.schema.stance, key=lambda n: (votes[n], mass[n]))
        return DocumentPrediction(
            issues=[n for n, t in zip(self.schema.issues, self.thresholds) if issue_max[n] >= t],
            issue_scores=issue_max,
            stance=stance,
            stance_distribution=votes,
            paragraphs=paragraphs,
        )
