"""The last layer for the pooler's token only: the same logits and gradients as the model's own forward."""

import numpy as np
import pytest
import torch

from infer.first_token import first_token_logits, supports_first_token
from train.config import ModelConfig
from train.model.build import build_model

TEXTS = ["NATO expansion talks in Geneva", "Russia missiles", "China Beijing Moscow guarantees sanctions drills border",
         "troops"]


@pytest.fixture
def model_and_batch(tiny_backbone, schema):
    model, tok = build_model(ModelConfig(backbone=str(tiny_backbone), train_layers=None, pooling="mean_layer"), schema)
    for p in model.parameters():  # a trained-looking model: the pooling layer's zero weights perturbed
        p.data.add_(0.05 * torch.randn_like(p))
    return model.eval(), tok(TEXTS, padding=True, return_tensors="pt")


def test_first_token_logits_equal_the_full_forward_on_padded_batches(model_and_batch):
    model, batch = model_and_batch
    assert batch["attention_mask"].min() == 0  # the batch has padding
    with torch.no_grad():
        full = model(**batch).logits
        fast = first_token_logits(model, batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-4)


def test_gradients_through_the_first_token_layer_equal_the_full_ones(model_and_batch):
    model, batch = model_and_batch
    grads = []
    for fn in (lambda: model(**batch).logits, lambda: first_token_logits(model, batch["input_ids"], batch["attention_mask"])):
        model.zero_grad()
        fn().square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4, msg=name)


def test_unsupported_models_fall_back_to_none(model_and_batch):
    model, batch = model_and_batch
    model.config.model_type = "xlm-roberta"  # not known to read the pooler
    assert not supports_first_token(model)
    assert first_token_logits(model, batch["input_ids"], batch["attention_mask"]) is None


def test_classifier_scores_equal_with_and_without_the_first_token_path(tiny_checkpoint):
    from infer.classifier import Classifier

    fast = Classifier.from_pretrained(tiny_checkpoint, route="fp32")
    plain = Classifier(fast.model, fast.tokenizer, fast.schema, fast.raw_thresholds, fast.device, "fp32",
                       calibration=fast.calibration, first_token=False)
    assert fast._first_token and not plain._first_token
    np.testing.assert_allclose(fast.predict_scores(TEXTS), plain.predict_scores(TEXTS), atol=1e-5)
