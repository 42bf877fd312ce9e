"""Sentence embeddings of the frozen backbone: mean-pooled, L2-normalized last hidden states.

multilingual-e5 is trained for exactly this pooling (with a `"query: "` prefix), so these vectors are
the strongest features the backbone gives without fine-tuning; the `embeddings_logreg` baseline
(`train.evaluate.baselines`) fits a logistic regression on them.

Example:
    >>> encoder = FrozenEncoder("bundled:multilingual-e5-small")  # doctest: +SKIP
    >>> encoder.embed(["NATO said the open door stays open."]).shape  # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

E5_PREFIX = "query: "


def mean_pool(hidden, attention_mask):
    """(batch, seq, dim) states, (batch, seq) mask -> (batch, dim) L2-normalized mean over real tokens."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


class FrozenEncoder:
    """A backbone loaded once, in eval mode, that turns texts into normalized mean-pooled vectors.

    With `cache` (default), vectors are kept in a `train.evaluate.vector_store.VectorStore` keyed by the backbone's
    content, prefix and max_length, so texts embedded by an earlier run (or seed, or fold) are not embedded
    again; `cache_root` overrides the store's root directory.
    """

    def __init__(self, backbone: str, batch_size: int = 16, max_length: int = 256, prefix: str = E5_PREFIX,
                 cache: bool = True, cache_root: str | None = None):
        self.backbone, self.batch_size, self.max_length, self.prefix = backbone, batch_size, max_length, prefix
        self.cache, self.cache_root = cache, cache_root
        self._model = self._tokenizer = self._store = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        from train.backbones.bundled import load_pretrained

        self._tokenizer = load_pretrained(self.backbone, AutoTokenizer)
        model, info = load_pretrained(self.backbone, AutoModel, output_loading_info=True)
        self._model = model.eval()
        # weights missing from the checkpoint are drawn at random on every load: a pooler (mean pooling never
        # reads it) is left out of the store's key; anything else makes the vectors unrepeatable, so no store
        missing = list(info.get("missing_keys", []))
        unrepeatable = [k for k in missing if not k.startswith("pooler.")]
        if self.cache and unrepeatable:
            logger.warning("%s: %d weights are not in the checkpoint (e.g. %s): frozen vectors are not stored",
                           self.backbone, len(unrepeatable), unrepeatable[0])
        elif self.cache:
            from train.evaluate.vector_store import VectorStore, encoder_key

            key = encoder_key(self._model, self._tokenizer, self.prefix, self.max_length, skip=missing)
            self._store = VectorStore(key, self.cache_root)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), hidden) float32, rows in input order (stored vectors reused, the rest computed)."""
        if self._model is None:
            self._load()
        if self._store is None:
            return self._compute(texts)
        found = self._store.lookup(texts)
        missing = [i for i in range(len(texts)) if i not in found]
        computed = self._compute([texts[i] for i in missing])
        if missing:
            self._store.add([texts[i] for i in missing], computed)
        logger.info("Frozen embeddings: %d of %d texts from the vector store, %d computed",
                    len(found), len(texts), len(missing))
        if not found:
            return computed
        emb = np.zeros((len(texts), next(iter(found.values())).shape[0]), dtype=np.float32)
        for i, vector in found.items():
            emb[i] = vector
        if missing:
            emb[missing] = computed
        return emb

    def _compute(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` with the loaded model, in batches of similar token counts (little padding)."""
        import torch

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        emb = None
        ids = self._tokenizer([self.prefix + t for t in texts], truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self._tokenizer.pad({"input_ids": [ids[i] for i in idx]}, padding_side="right",
                                          return_attention_mask=True, return_tensors="pt")
                hidden = self._model(**enc).last_hidden_state  # (batch, seq, hidden)
                pooled = mean_pool(hidden, enc["attention_mask"])
                if emb is None:
                    emb = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
                emb[idx] = pooled.float().numpy()
        return emb if emb is not None else np.zeros((0, 0), dtype=np.float32)

    def release(self) -> None:
        """Drop the loaded model (the next `embed` reloads it)."""
        self._model = self._tokenizer = self._store = None
