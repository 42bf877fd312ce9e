import pytest
import torch
from torch import nn

from train.model.dropout import FastDropout, fast_dropout, use_fast_dropout


def test_fast_dropout_is_inverted_bernoulli_dropout():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    out = fast_dropout(x, 0.1)
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.003  # Bernoulli(0.9) keep rate, 400k draws
    assert torch.allclose(out[kept], torch.full_like(out[kept], 65536 / (65536 - 6554)))  # 1 / (1 - p_rounded)
    assert abs(out.mean().item() - 1.0) < 0.004  # expectation preserved
    # independent positions: neighbours share a 64-bit word but not their bits
    pair = kept[:-1:2].float() * kept[1::2].float()
    assert abs(pair.mean().item() - 0.81) < 0.004


def test_fast_dropout_is_seeded_and_passes_gradients_through_the_mask():
    x = torch.randn(3, 50, requires_grad=True)
    torch.manual_seed(1)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(1)
    b = fast_dropout(x, 0.3)
    assert torch.equal(a, b)
    a.sum().backward()
    scale = 65536 / (65536 - round(0.3 * 65536))
    assert torch.allclose(x.grad, (a != 0).float() * scale)
    assert fast_dropout(x, 0.0) is x
    with pytest.raises(ValueError, match="dropout probability"):
        fast_dropout(x, 1.0)


def test_fast_dropout_module_is_identity_in_eval_mode():
    m = FastDropout(0.5).eval()
    x = torch.randn(4, 8)
    assert torch.equal(m(x), x)
    assert m.state_dict() == nn.Dropout(0.5).state_dict() == {}


def test_use_fast_dropout_trains_the_model_with_it_and_restores_it(tiny_backbone):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=3,
                                                               attn_implementation="sdpa")
    ids = torch.randint(5, 50, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    model.eval()
    before = model(input_ids=ids, attention_mask=mask).logits
    with use_fast_dropout(model):
        assert all(type(m) is FastDropout for m in model.modules() if isinstance(m, nn.Dropout))
        assert torch.allclose(model(input_ids=ids, attention_mask=mask).logits, before, atol=1e-5)  # eval: exact
        model.train()
        torch.manual_seed(0)
        a = model(input_ids=ids, attention_mask=mask).logits
        torch.manual_seed(0)
        b = model(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(a, b) and not torch.allclose(a, before)  # seeded, and dropout is on
        a.sum().backward()
        assert model.classifier.weight.grad is not None
    assert all(type(m) is nn.Dropout for m in model.modules() if isinstance(m, nn.Dropout))
