"""The `transformers` Trainer, configured for the two-group head.

`build_trainer` turns the typed config into `TrainingArguments` (epoch evaluation, early stopping on
validation macro-F1, best checkpoint kept, length-grouped batches, bf16 where the hardware runs it
natively) and plugs in `IssueStanceLoss` and the project's `IssueStanceMetric`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from transformers import Trainer

from infer.hardware import cpu_has_native_bf16
from infer.labels import LabelSchema
from train.config import Config
from train.embeddings import ALIGNMENT_COLUMN
from train.metrics import IssueStanceMetric, flatten
from train.model import IssueStanceLoss, cls_alignment_loss

logger = logging.getLogger(__name__)


def resolve_precision(precision: str) -> str:
    """`auto` -> bf16 on a bf16-capable GPU or a CPU with AMX/AVX512-BF16, fp16 on other GPUs... else fp32."""
    if precision != "auto":
        if precision == "fp16" and not torch.cuda.is_available():
            raise ValueError("train.precision=fp16 needs a CUDA GPU; use bf16 or fp32 on CPU")
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def training_arguments(cfg: Config, output_dir: str | Path, cached_states: bool = False):
    """`TrainingArguments` from the typed config; `cached_states`: batches come from
    `train.layer_cache.CachedStatesCollator`, which needs the `cache_index` column kept."""
    from transformers import TrainingArguments

    t = cfg.train
    precision = resolve_precision(t.precision)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    logger.info("Precision: %s (train.precision=%s)", precision, t.precision)
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        lr_scheduler_type=t.scheduler,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        length_column_name="length",
        dataloader_num_workers=t.dataloader_num_workers,
        # torchrun / accelerate set WORLD_SIZE; on CPU the only DDP backend is gloo
        ddp_backend="gloo" if distributed and not torch.cuda.is_available() else None,
        report_to="none",
        remove_unused_columns=not cached_states,
    )


def is_head_parameter(model, name: str) -> bool:
    """True for the parameters a sequence-classification model adds to its pretrained encoder."""
    return not name.startswith(model.base_model_prefix + ".") or ".pooler." in name


class IssueStanceTrainer(Trainer):
    """The Trainer, with the new head (pooler + classifier) at its own learning rate when one is set,
    and the optional first-token alignment term (`train.model.cls_alignment_loss`) in the training loss.

    The head starts from random weights while the encoder is pretrained: a larger step for the head
    lets it catch up in the few hundred steps a small dataset gives, without shaking the encoder. The
    Trainer builds its optimizer as usual (`args.optim`, weight-decay groups); each group is then
    split into head and encoder parameters.
    """

    def __init__(self, *args, head_learning_rate: float | None = None, cls_alignment_weight: float = 0.0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.head_learning_rate = head_learning_rate
        self.cls_alignment_weight = cls_alignment_weight

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if ALIGNMENT_COLUMN not in self._signature_columns:  # keep the targets through column pruning
            self._signature_columns.append(ALIGNMENT_COLUMN)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The configured loss, plus `cls_alignment_weight` x `cls_alignment_loss` on training batches
        that carry alignment targets (the train split gets them in `train.run`; evaluation never does)."""
        target = inputs.pop(ALIGNMENT_COLUMN, None)
        align = target is not None and self.cls_alignment_weight > 0 and model.training
        if align:
            inputs = {**inputs, "output_hidden_states": True}
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if align:
            loss = loss + self.cls_alignment_weight * cls_alignment_loss(outputs.hidden_states[-1], target)
            outputs.hidden_states = None  # not kept past the loss
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.head_learning_rate is None or getattr(self, "_head_lr_applied", False):
            return optimizer
        opt_model = self.model if model is None else model
        head = {id(p) for n, p in opt_model.named_parameters() if is_head_parameter(opt_model, n)}
        groups, optimizer.param_groups = optimizer.param_groups, []  # no state yet: regroup in place
        for group in groups:
            for in_head in (True, False):
                params = [p for p in group["params"] if (id(p) in head) == in_head]
                if params:
                    optimizer.add_param_group({**group, "params": params,
                                               "lr": self.head_learning_rate if in_head else group["lr"]})
        self._head_lr_applied = True
        logger.info("Head learning rate %g, encoder %g", self.head_learning_rate, self.args.learning_rate)
        return optimizer


def compute_metrics_fn(schema: LabelSchema):
    """Trainer `compute_metrics`: logits -> scores -> `IssueStanceMetric`, flattened for the logs."""
    metric = IssueStanceMetric()

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        result = metric.compute(
            predictions=schema.scores(logits), references=labels,
            issue_names=list(schema.issues), stance_names=list(schema.stance),
        )
        flat = flatten(result)
        # The Trainer logs these per evaluation; keep the headline and per-label F1s only.
        return {k.replace("/", "_"): v for k, v in flat.items() if k.count("/") <= 1 or k.endswith("/f1")}

    return compute_metrics


def build_trainer(cfg: Config, model, tokenizer, splits, schema: LabelSchema, output_dir: str | Path,
                  data_collator=None):
    """The configured `IssueStanceTrainer`. With `data_collator` (a `CachedStatesCollator`), `model` is the
    `TopLayers` wrapper and `splits` carry `cache_index` instead of token ids."""
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback

    args = training_arguments(cfg, output_dir, cached_states=data_collator is not None)
    loss = IssueStanceLoss(schema, cfg.loss, np.asarray(splits["train"]["labels"]))
    callbacks = []
    if cfg.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    return IssueStanceTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=data_collator or DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        compute_metrics=compute_metrics_fn(schema),
        compute_loss_func=loss,
        callbacks=callbacks,
        head_learning_rate=cfg.train.head_learning_rate,
        cls_alignment_weight=cfg.loss.cls_alignment_weight,
    )
