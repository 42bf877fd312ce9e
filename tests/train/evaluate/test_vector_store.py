"""train.evaluate.vector_store and its use by the frozen encoder: stored vectors are the computed ones, keyed safely."""

import numpy as np
import pytest

from synthetic_data import synthetic_records
from train.evaluate.embeddings import FrozenEncoder
from train.evaluate.vector_store import MAX_SHARDS, VectorStore, encoder_key


def test_store_round_trip_and_merge(tmp_path):
    store = VectorStore("ab" * 32, root=tmp_path)
    assert store.lookup(["a", "b"]) == {}
    rng = np.random.default_rng(0)
    vectors = {}
    for i in range(MAX_SHARDS + 2):  # one shard per add, merged past MAX_SHARDS
        v = rng.normal(size=(1, 4)).astype(np.float32)
        store.add([f"text {i}"], v)
        vectors[f"text {i}"] = v[0]
    shards = list(store.dir.glob("*.npz"))
    assert 1 <= len(shards) <= MAX_SHARDS
    fresh = VectorStore("ab" * 32, root=tmp_path)  # another process: reads the shards
    texts = ["missing", *vectors]
    found = fresh.lookup(texts)
    assert sorted(found) == list(range(1, len(texts)))
    for i, text in enumerate(texts[1:], start=1):
        np.testing.assert_array_equal(found[i], vectors[text])
    assert VectorStore("cd" * 32, root=tmp_path).lookup(texts) == {}  # another encoder key: nothing shared
    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        store.add(["x", "y"], np.zeros((1, 4)))


def test_merge_keeps_shards_written_by_another_process(tmp_path):
    mine = VectorStore("12" * 32, root=tmp_path)
    for i in range(MAX_SHARDS - 1):
        mine.add([f"mine {i}"], np.full((1, 2), i, dtype=np.float32))
    # another process adds the MAX_SHARDS-th shard (no merge yet), after `mine` read the store
    VectorStore("12" * 32, root=tmp_path).add(["theirs"], np.ones((1, 2), dtype=np.float32))
    assert len(list(mine.dir.glob("*.npz"))) == MAX_SHARDS
    mine.add(["last"], np.zeros((1, 2), dtype=np.float32))  # past MAX_SHARDS: merges what it read
    found = VectorStore("12" * 32, root=tmp_path).lookup(["theirs", "mine 0", "last"])
    assert sorted(found) == [0, 1, 2]
    np.testing.assert_array_equal(found[0], [1.0, 1.0])
    assert len(list(mine.dir.glob("*.npz"))) == 2  # the merged shard + the other process's


def test_damaged_shard_is_skipped(tmp_path, caplog):
    store = VectorStore("ef" * 32, root=tmp_path)
    store.add(["kept"], np.ones((1, 3), dtype=np.float32))
    (store.dir / "zz-cut.npz").write_bytes(b"PK\x03\x04 not a whole file")
    found = VectorStore("ef" * 32, root=tmp_path).lookup(["kept", "other"])
    assert list(found) == [0]
    assert "skipping unreadable shard" in caplog.text and "zz-cut.npz" in caplog.text


def test_encoder_reuses_stored_vectors(tiny_backbone, tmp_path, monkeypatch):
    texts = [r["text"] for r in synthetic_records()[:12]]
    cold = FrozenEncoder(str(tiny_backbone), max_length=32, cache_root=str(tmp_path))
    first = cold.embed(texts[:8])
    plain = FrozenEncoder(str(tiny_backbone), max_length=32, cache=False).embed(texts)
    np.testing.assert_allclose(first, plain[:8], atol=1e-6)
    assert list(tmp_path.rglob("*.npz"))  # the first run stored its vectors

    warm = FrozenEncoder(str(tiny_backbone), max_length=32, cache_root=str(tmp_path))
    computed = []
    original = FrozenEncoder._compute
    monkeypatch.setattr(FrozenEncoder, "_compute",
                        lambda self, batch: computed.append(list(batch)) or original(self, batch))
    both = warm.embed(texts)  # 8 stored, 4 new
    assert computed == [texts[8:]]
    np.testing.assert_allclose(both, plain, atol=1e-6)
    assert warm.embed(texts).shape == plain.shape and computed[-1] == []  # all stored now

    other = FrozenEncoder(str(tiny_backbone), max_length=16, cache_root=str(tmp_path))  # max_length is in the key
    other.embed(texts[:2])
    assert computed[-1] == texts[:2]


def test_encoder_key_covers_weights_tokenizer_and_prefix(tiny_backbone):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(tiny_backbone)
    tokenizer = AutoTokenizer.from_pretrained(tiny_backbone)
    key = encoder_key(model, tokenizer, "query: ", 256)
    assert key == encoder_key(model, tokenizer, "query: ", 256)
    assert key != encoder_key(model, tokenizer, "", 256)
    assert key != encoder_key(model, tokenizer, "query: ", 128)
    with __import__("torch").no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert key != encoder_key(model, tokenizer, "query: ", 256)


def _copy_without(tiny_backbone, out, drop: str):
    """The tiny backbone saved again without the weights whose names start with `drop`."""
    from safetensors.torch import load_file, save_file
    import shutil

    shutil.copytree(tiny_backbone, out)
    weights = load_file(out / "model.safetensors")
    save_file({k: v for k, v in weights.items() if not k.startswith(drop)}, out / "model.safetensors",
              metadata={"format": "pt"})
    return out


def test_random_pooler_does_not_change_the_key(tiny_backbone, tmp_path, monkeypatch):
    """A checkpoint without pooler weights gets a random pooler on every load; mean pooling never reads it."""
    backbone = _copy_without(tiny_backbone, tmp_path / "no-pooler", "pooler.")
    texts = [r["text"] for r in synthetic_records()[:6]]
    first = FrozenEncoder(str(backbone), max_length=32, cache_root=str(tmp_path / "store")).embed(texts)
    computed = []
    original = FrozenEncoder._compute
    monkeypatch.setattr(FrozenEncoder, "_compute",
                        lambda self, batch: computed.append(list(batch)) or original(self, batch))
    again = FrozenEncoder(str(backbone), max_length=32, cache_root=str(tmp_path / "store")).embed(texts)
    assert computed == [[]]  # a new load, every vector from the store
    np.testing.assert_array_equal(first, again)


def test_missing_encoder_weights_disable_the_store(tiny_backbone, tmp_path, caplog):
    backbone = _copy_without(tiny_backbone, tmp_path / "cut", "encoder.layer.0.output.dense.bias")
    encoder = FrozenEncoder(str(backbone), max_length=32, cache_root=str(tmp_path / "store"))
    assert encoder.embed(["NATO and Russia met in Geneva."]).shape[0] == 1
    assert "frozen vectors are not stored" in caplog.text
    assert not (tmp_path / "store").exists()
