"""The auxiliary losses of train.model.loss: group consistency and the who-reacts head."""

import pytest
import torch

from infer.labels import LabelSchema
from train.model.loss import actor_loss, group_consistency_loss

SCHEMA = LabelSchema(issues=("a", "b"), stance=("x", "y", "z"))


def test_consistency_is_zero_for_identical_members_and_positive_otherwise():
    row = torch.tensor([0.4, -1.2, 2.0, 0.1, -0.5])
    same = torch.stack([row, row, row])
    assert group_consistency_loss(same, torch.tensor([3, 3, 3]), SCHEMA).item() == pytest.approx(0.0, abs=1e-6)
    stance_differs = torch.stack([row, torch.tensor([0.4, -1.2, -2.0, 0.1, 0.5])])
    issues_differ = torch.stack([row, torch.tensor([-2.0, 1.5, 2.0, 0.1, -0.5])])
    for pair in (stance_differs, issues_differ):
        assert group_consistency_loss(pair, torch.tensor([0, 0]), SCHEMA).item() > 0.01


def test_consistency_only_pairs_rows_of_one_group():
    a, b = torch.tensor([2.0, -2.0, 3.0, 0.0, 0.0]), torch.tensor([-2.0, 2.0, 0.0, 0.0, 3.0])
    # a and b differ, but are in different groups or alone (-1): nothing to make consistent
    for groups in ([0, 1], [-1, -1], [0, -1]):
        assert group_consistency_loss(torch.stack([a, b]), torch.tensor(groups), SCHEMA).item() == 0.0
    # symmetric: the order of the members does not matter
    ab = group_consistency_loss(torch.stack([a, b]), torch.tensor([0, 0]), SCHEMA)
    ba = group_consistency_loss(torch.stack([b, a]), torch.tensor([0, 0]), SCHEMA)
    assert ab.item() == pytest.approx(ba.item()) and ab.item() > 0


def test_consistency_gradient_reaches_the_trained_layers(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    schema = LabelSchema.from_yaml("data/labels/schema.yaml")
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint)
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    torch.manual_seed(0)
    with torch.no_grad():  # an untrained head scores every text alike; spread its weights so two texts differ
        model.classifier.weight.normal_(0.0, 1.0)
    batch = tok(["NATO rejected the demands", "Россия НАТО санкции ракеты"], padding=True, return_tensors="pt")
    loss = group_consistency_loss(model(**batch).logits, torch.tensor([0, 0]), schema)
    loss.backward()
    top = model.bert.encoder.layer[-1].attention.self.query.weight.grad
    assert loss.item() > 0 and top is not None and top.abs().sum() > 0


def test_actor_loss_ignores_records_without_an_actor():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]], requires_grad=True)
    none = actor_loss(logits, torch.tensor([-1, -1]))
    assert none.item() == 0.0
    none.backward()  # still a graph: a batch without actors trains as usual
    one = actor_loss(logits, torch.tensor([-1, 1]))
    only_second = torch.nn.functional.cross_entropy(logits[1:], torch.tensor([1]))
    assert one.item() == pytest.approx(only_second.item())
