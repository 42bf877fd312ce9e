"""Tiny random checkpoints for fast tests: a WordPiece tokenizer trained on a few texts + a 2-layer BERT."""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "NATO Russia Ukraine missiles sanctions drills exercises China Beijing Moscow Washington guarantees "
    "expansion talks Geneva Brussels treaty troops border hypersonic deterrence partnership alliance "
    "Россия НАТО санкции ракеты учения Китай гарантии Україна الناتو روسيا 北约 俄罗斯 导弹 制裁 OTAN Sanktionen"
)


def make_tiny_checkpoint(out_dir: str | Path, texts: list[str] | None = None, hidden: int = 32) -> Path:
    """Write a tiny `BertModel` + fast tokenizer (save_pretrained layout) to `out_dir` and return it."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    specials = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([WORDS, *(texts or [])], trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=128,
    )
    config = BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=130, pad_token_id=tok.token_to_id("<pad>"),
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(out_dir)
    fast.save_pretrained(out_dir)
    return out_dir
