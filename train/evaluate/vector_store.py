"""A persistent store of frozen-backbone sentence vectors: runs on the same texts embed them once.

The `embeddings_logreg` baseline (`train.evaluate.baselines`) and the alignment targets (`train.evaluate.embeddings`) embed
every text they see with the frozen backbone, on every run: in the default run about 1.5k texts through
12 layers, a sixth of the whole job on 2 CPU cores, for vectors that depend only on the backbone's
weights and tokenizer, the prefix, `max_length`, the pooling and the text. `VectorStore` keeps them in
`<root>/<key>/`, where `<key>` hashes everything but the text (`encoder_key`: the weights' bytes, the
tokenizer's serialization, prefix, max_length) and each row is found by the sha256 of its text. So a
second run, another seed of a sweep or a cross-validation fold embeds only the texts it has not seen,
and a changed backbone or prefix can never be served stale vectors.

The root is `$STC_VECTOR_CACHE`, else `~/.cache/security-talks-classifier/vectors`. Each write adds one
`.npz` shard (`keys`: sha256 hex of each text, `vectors`: float32 rows), written to a temporary file and
renamed into place (`infer.atomic.atomic_file`), so a reader never sees half a shard and concurrent runs
never overwrite each other; a shard that cannot be read is skipped with a warning (its texts are
embedded again). Past `MAX_SHARDS` shards, the next write merges them into one.

Example:
    >>> store = VectorStore(encoder_key(model, tokenizer, "query: ", 256))  # doctest: +SKIP
    >>> found = store.lookup(texts)  # {index: vector} for the texts already stored  # doctest: +SKIP
    >>> store.add([texts[i] for i in missing], vectors)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from pathlib import Path
from typing import Collection, Sequence

import numpy as np

from infer.atomic import atomic_file

logger = logging.getLogger(__name__)

CACHE_ENV = "STC_VECTOR_CACHE"
DEFAULT_ROOT = Path("~/.cache/security-talks-classifier/vectors")
MAX_SHARDS = 16
# Bump when the vectors an encoder produces change for the same inputs (pooling, normalization, ...).
_FORMAT_VERSION = "mean-l2-v1"


def store_root(root: str | os.PathLike | None = None) -> Path:
    """`root`, else `$STC_VECTOR_CACHE`, else `~/.cache/security-talks-classifier/vectors`."""
    return Path(root if root is not None else (os.environ.get(CACHE_ENV) or DEFAULT_ROOT)).expanduser()


def encoder_key(model, tokenizer, prefix: str, max_length: int, skip: Collection[str] = ()) -> str:
    """A hex key for everything but the text that fixes an encoder's vectors: every weight's bytes, the
    tokenizer's full serialization, prefix, max_length and the pooling format (~1 s for e5-small).

    `skip`: tensors left out, e.g. a pooler the checkpoint lacks (drawn at random on each load, never read by
    mean pooling): hashing it would give every load its own key.
    """
    import torch

    h = hashlib.sha256(_FORMAT_VERSION.encode())
    skipped = set(skip)
    for name, tensor in model.state_dict().items():
        if name in skipped:
            continue
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update((backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))).encode())
    h.update(f"prefix={prefix!r};max_length={int(max_length)}".encode())
    return h.hexdigest()


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorStore:
    """The stored vectors of one encoder (`key` from `encoder_key`) under `store_root(root)`."""

    def __init__(self, key: str, root: str | os.PathLike | None = None):
        self.dir = store_root(root) / key[:32]
        self._rows: dict[str, np.ndarray] | None = None
        self._read: list[Path] = []  # shards whose rows are in `_rows` (read or written): all a merge may delete

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("*.npz")) if self.dir.is_dir() else []

    def _load(self) -> dict[str, np.ndarray]:
        if self._rows is None:
            rows: dict[str, np.ndarray] = {}
            self._read = []
            for shard in self._shards():
                try:
                    with np.load(shard, allow_pickle=False) as data:
                        keys, vectors = data["keys"], data["vectors"]
                    if vectors.ndim != 2 or len(keys) != len(vectors):
                        raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
                except Exception as exc:  # a damaged shard costs a recomputation, never a wrong vector
                    logger.warning("Vector store: skipping unreadable shard %s (%s)", shard, exc)
                    continue
                rows.update(zip(keys.tolist(), vectors))
                self._read.append(shard)
            self._rows = rows
        return self._rows

    def lookup(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """{index in `texts`: stored vector} for the texts this store already has."""
        rows = self._load()
        found = {}
        for i, text in enumerate(texts):
            vector = rows.get(text_key(text))
            if vector is not None:
                found[i] = vector
        return found

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text (a new shard; past `MAX_SHARDS` shards, all are merged into one)."""
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
        if not len(texts):
            return
        rows = self._load()
        new = {text_key(t): np.asarray(v, dtype=np.float32) for t, v in zip(texts, vectors)}
        rows.update(new)
        merge = len(self._shards()) + 1 > MAX_SHARDS
        written = self._write(rows if merge else new)
        if merge:  # the merged shard holds every row this process read or wrote; others' newer shards stay
            for shard in self._read:
                shard.unlink(missing_ok=True)
            self._read = []
        self._read.append(written)

    def _write(self, rows: dict[str, np.ndarray]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(rows), dtype="U64")
        vectors = np.stack(list(rows.values())).astype(np.float32)
        path = self.dir / f"{uuid.uuid4().hex}.npz"
        with atomic_file(path, mode="wb", encoding=None) as fh:
            np.savez(fh, keys=keys, vectors=vectors)
        logger.info("Vector store %s: %d vectors written", self.dir, len(keys))
        return path
