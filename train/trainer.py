"""The `transformers` Trainer, configured for the two-group head.

`build_trainer` turns the typed config into `TrainingArguments` (epoch evaluation, early stopping on
validation macro-F1, best checkpoint kept, length-grouped batches, bf16 where the hardware runs it
natively) and plugs in `IssueStanceLoss` and the project's `IssueStanceMetric`.

Resume granularity: `load_best_model_at_end` needs the save and evaluation strategies to match, and
evaluating every N steps would change early stopping (its patience counts evaluations). So both stay
per epoch and `StepCheckpoints` adds a checkpoint every `train.save_steps` steps in between;
`WallClock` keeps the training time of every process of a run (first and resumed ones) in
`wall_time.json` in the work directory, so a resumed run logs its total time.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from infer.atomic import atomic_file
from infer.hardware import cpu_has_native_bf16
from infer.labels import LabelSchema
from train.config import Config
from train.model.layer_cache import TopLayers, unwrap
from train.evaluate.metrics import IssueStanceMetric, flatten
from train.model.loss import IssueStanceLoss, actor_loss, group_consistency_loss

GROUP_COLUMN = "group_index"  # training rows of one group (translations, parallel paragraphs) share it; -1: alone
ACTOR_COLUMN = "actor_index"  # index of the record's `actor` in the schema; -1: none

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
    `train.model.layer_cache.CachedStatesCollator`, which needs the `cache_index` column kept."""
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
        warmup_steps=t.warmup_ratio,  # transformers 5: a float below 1 is a fraction of the total steps
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
    """The Trainer, with the new head (pooler + classifier) at its own learning rate when one is set, and the
    optional group-consistency and who-reacts terms in the training loss.

    The head starts from random weights while the encoder is pretrained: a larger step for the head
    lets it catch up in the few hundred steps a small dataset gives, without shaking the encoder. The
    Trainer builds its optimizer as usual (`args.optim`, weight-decay groups); each group is then
    split into head and encoder parameters.
    """

    def __init__(self, *args, head_learning_rate: float | None = None, consistency_weight: float = 0.0, actor_weight: float = 0.0, num_actors: int = 0,
                 model_schema: LabelSchema | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_schema = model_schema
        self.head_learning_rate = head_learning_rate
        self.consistency_weight = consistency_weight
        self.actor_weight = actor_weight
        self._pooled: list[torch.Tensor] = []
        if actor_weight > 0:
            if num_actors < 2:
                raise ValueError("loss.actor_weight > 0 needs the schema's `actor` labels (data/labels/schema.yaml)")
            add_actor_head(self.model, num_actors)
            pooler = getattr(getattr(unwrap(self.model), unwrap(self.model).base_model_prefix), "pooler", None)
            if pooler is None:
                raise ValueError("loss.actor_weight > 0 needs a backbone whose head reads a pooler (BERT-like, e5)")
            pooler.register_forward_hook(lambda _module, _inputs, output: self._pooled.append(output))

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        for column in (GROUP_COLUMN, ACTOR_COLUMN):  # keep them through column pruning
            if column not in self._signature_columns:
                self._signature_columns.append(column)

    def _get_train_sampler(self, train_dataset=None):
        """With `loss.consistency_weight` > 0, the rows of a group follow one another in the length-grouped order
        (`GroupsTogetherSampler`), so most of a group's members share a batch."""
        train_dataset = self.train_dataset if train_dataset is None else train_dataset
        if (self.consistency_weight > 0 and self.args.world_size == 1
                and GROUP_COLUMN in getattr(train_dataset, "column_names", ())):
            columns = train_dataset.column_names  # `length` is pruned where the model reads token ids
            lengths = (list(train_dataset["length"]) if "length" in columns
                       else [len(ids) for ids in train_dataset["input_ids"]])
            return GroupsTogetherSampler(list(train_dataset[GROUP_COLUMN]), lengths,
                                         self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        """Evaluation and prediction in the dataset's order (one process), also with length-grouped training.

        transformers 5 batches evaluation with the training's `LengthGroupedSampler` (random megabatches),
        so predictions came back in another order than the split's rows, while `train.run` pairs them with
        the split's columns (calibration groups). `train.run` stores validation and test in length order,
        so sequential batches pad little. Several processes keep the Trainer's distributed sampler.
        """
        if eval_dataset is None or self.args.world_size > 1:
            return super()._get_eval_sampler(eval_dataset)
        return torch.utils.data.SequentialSampler(eval_dataset)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Checkpoints of top-layer training (`TopLayers`) hold only the weights that train; the run's final
        checkpoint is still the whole model (`train.run` saves it with `save_pretrained`)."""
        if state_dict is None and isinstance(self.model, TopLayers):
            state_dict = self.model.trained_state_dict()
        super()._save(output_dir, state_dict=state_dict)

    def _issue_warnings_after_load(self, load_result) -> None:
        """Loading such a checkpoint (best model, `--resume`) leaves the frozen weights as they are: not a
        missing key. Any other missing or unexpected key is warned about."""
        if not isinstance(self.model, TopLayers):
            return super()._issue_warnings_after_load(load_result)
        frozen = self.model.frozen_names()
        missing = [k for k in load_result.missing_keys if k not in frozen]
        if missing:
            logger.warning("There were missing keys in the checkpoint loaded (trained weights): %s", missing)
        if load_result.unexpected_keys:
            logger.warning("There were unexpected keys in the checkpoint loaded: %s", load_result.unexpected_keys)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The configured loss, plus on training batches `consistency_weight` x `group_consistency_loss` and
        `actor_weight` x `actor_loss` (evaluation batches get the configured loss only)."""
        groups, actors = inputs.pop(GROUP_COLUMN, None), inputs.pop(ACTOR_COLUMN, None)
        self._pooled.clear()
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if model.training and groups is not None and self.consistency_weight > 0:
            loss = loss + self.consistency_weight * group_consistency_loss(outputs.logits, groups, self.model_schema)
        if model.training and actors is not None and self.actor_weight > 0 and self._pooled:
            head = unwrap_actor_head(model)
            loss = loss + self.actor_weight * actor_loss(head(self._pooled[-1]), actors)
        self._pooled.clear()
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


class GroupsTogetherSampler(torch.utils.data.Sampler):
    """Transformers' length-grouped random order over units, where a unit is all rows of one group (`group_index`
    >= 0) or a single row (-1); each unit's rows come one after another.

    >>> sorted(GroupsTogetherSampler([0, -1, 0, -1], [5, 9, 7, 3], batch_size=2))
    [0, 1, 2, 3]
    """

    def __init__(self, group_index: list[int], lengths: list[int], batch_size: int, generator=None):
        units: dict[tuple[int, int], list[int]] = {}
        for row, group in enumerate(group_index):
            units.setdefault((int(group), -1) if group >= 0 else (-1, row), []).append(row)
        self.units = list(units.values())
        self.unit_lengths = [max(lengths[r] for r in rows) for rows in self.units]
        self.batch_size, self.generator, self.n = batch_size, generator, len(group_index)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        from transformers.trainer_pt_utils import get_length_grouped_indices

        order = get_length_grouped_indices(self.unit_lengths, self.batch_size, generator=self.generator)
        return iter([row for unit in order for row in self.units[unit]])


def add_actor_head(model, num_actors: int) -> None:
    """A linear who-reacts head on the pooled vector, as `model.actor_head` (training only: `train.run` removes it
    before the checkpoint is saved)."""
    hidden = unwrap(model).config.hidden_size
    model.actor_head = nn.Linear(hidden, num_actors).to(next(unwrap(model).parameters()).device)


def unwrap_actor_head(model) -> nn.Module:
    return getattr(model, "actor_head", None) or getattr(getattr(model, "module", None), "actor_head")


class StepCheckpoints(TrainerCallback):
    """Ask the Trainer for a checkpoint every `save_steps` optimizer steps (epoch ends save anyway)."""

    def __init__(self, save_steps: int):
        self.save_steps = save_steps

    def on_step_end(self, args, state, control, **kwargs):
        at_epoch_end = state.epoch is not None and abs(state.epoch - round(state.epoch)) < 1e-6
        if state.global_step % self.save_steps == 0 and not at_epoch_end:
            control.should_save = True
        return control


WALL_TIME_FILE = "wall_time.json"


class WallClock(TrainerCallback):
    """Training wall time over all processes of a run: `wall_time.json` in the Trainer's output directory
    holds the seconds spent by earlier (interrupted) processes; a resumed run adds its own."""

    def __init__(self) -> None:
        self.earlier = 0.0
        self.started = time.time()
        self.total = 0.0

    def _path(self, args) -> Path:
        return Path(args.output_dir) / WALL_TIME_FILE

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        path = self._path(args)
        # train.run empties the work directory unless it resumes: a file here is an earlier process's
        self.earlier = float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0
        if self.earlier:
            logger.info("Resumed run: %.0f s of training before this process", self.earlier)

    def _write(self, args, state) -> None:
        self.total = self.earlier + time.time() - self.started
        if state.is_world_process_zero:
            Path(args.output_dir).mkdir(parents=True, exist_ok=True)
            with atomic_file(self._path(args)) as fh:
                json.dump({"seconds": round(self.total, 1)}, fh)

    def on_step_end(self, args, state, control, **kwargs):
        self._write(args, state)

    def on_train_end(self, args, state, control, **kwargs):
        self._write(args, state)
        logger.info("Training wall time %.0f s in total (this process %.0f s, earlier processes %.0f s)",
                    self.total, self.total - self.earlier, self.earlier)


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
    callbacks: list = [WallClock()]
    if cfg.train.save_steps:
        callbacks.append(StepCheckpoints(cfg.train.save_steps))
    if cfg.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    eval_split = splits["validation"]
    cap = cfg.train.eval_max_samples
    if cap is not None and cap < len(eval_split):
        eval_split = eval_split.shuffle(seed=cfg.seed).select(range(cap)).sort("length")
    return IssueStanceTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=eval_split,
        processing_class=tokenizer,
        data_collator=data_collator or DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8),
        compute_metrics=compute_metrics_fn(schema),
        compute_loss_func=loss,
        callbacks=callbacks,
        head_learning_rate=cfg.train.head_learning_rate,
        consistency_weight=cfg.loss.consistency_weight,
        actor_weight=cfg.loss.actor_weight,
        num_actors=len(schema.actors),
        model_schema=schema,
    )
