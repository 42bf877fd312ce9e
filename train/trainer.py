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

from infer.hardware import cpu_has_native_bf16
from infer.labels import LabelSchema
from train.config import Config
from train.metrics import IssueStanceMetric, flatten
from train.model import IssueStanceLoss

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


def training_arguments(cfg: Config, output_dir: str | Path):
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
    )


def build_optimizer(cfg: Config, model) -> torch.optim.Optimizer | None:
    """AdamW with the new head (pooler + classifier) at `train.head_learning_rate`; None: the Trainer's default.

    The head starts from random weights while the encoder is pretrained: a larger step for the head
    lets it catch up in the few hundred steps a small dataset gives, without shaking the encoder.
    Biases and LayerNorm weights get no weight decay, as in the Trainer's own grouping.
    """
    t = cfg.train
    if t.head_learning_rate is None:
        return None
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        head = not name.startswith(model.base_model_prefix + ".") or ".pooler." in name
        decay = param.ndim > 1 and "LayerNorm" not in name
        groups.setdefault((head, decay), []).append(param)
    params = [{"params": ps, "lr": t.head_learning_rate if head else t.learning_rate,
               "weight_decay": t.weight_decay if decay else 0.0} for (head, decay), ps in groups.items()]
    logger.info("Head learning rate %g, encoder %g", t.head_learning_rate, t.learning_rate)
    return torch.optim.AdamW(params, lr=t.learning_rate)


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


def build_trainer(cfg: Config, model, tokenizer, splits, schema: LabelSchema, output_dir: str | Path):
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

    args = training_arguments(cfg, output_dir)
    loss = IssueStanceLoss(schema, cfg.loss, np.asarray(splits["train"]["labels"]))
    callbacks = []
    if cfg.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    return Trainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        compute_metrics=compute_metrics_fn(schema),
        compute_loss_func=loss,
        callbacks=callbacks,
        optimizers=(build_optimizer(cfg, model), None),
    )
