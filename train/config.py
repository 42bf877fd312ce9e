"""Typed run configuration: YAML in, validated dataclasses out, `--set key=value` overrides.

Every key is a typed field with a help text. Unknown keys fail with a "did you mean" hint, wrong
types name the key, and the resolved config is saved next to the checkpoint (`config.yaml`).

Example:
    >>> cfg = load_config("configs/default.yaml", overrides=["train.epochs=2"])
    >>> cfg.train.epochs
    2
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


# Keys of experiments that were removed, each with the value that means what the code does now. A config saved by
# an earlier run holds them (every key is saved): at that value they are ignored, at any other value refused.
REMOVED_KEYS: dict[str, Any] = {
    "data.context_pairs_only": False,
    "model.num_layers": None,
    "model.text_prefix": "",
    "model.train_ffn": True,
    "train.token_drop": 0.0,
    "loss.cls_alignment_weight": 0.0,
}


@dataclass
class DataConfig:
    files: list[str] = field(
        default_factory=lambda: ["data/labels/*.jsonl"],
        metadata={"help": "JSON Lines files or glob patterns with labeled records."},
    )
    schema: str = field(default="data/labels/schema.yaml", metadata={"help": "Label schema YAML."})
    split_seed: int | None = field(
        default=None, metadata={"help": "Seed of the train/validation/test split (null: the run's `seed`). Fix it "
                                        "to train several seeds on one split, e.g. for `python -m train.average`."})
    val_size: float = field(default=0.15, metadata={"help": "Fraction of groups for validation."})
    test_size: float = field(default=0.15, metadata={"help": "Fraction of groups for the test split."})
    authored_train_only: bool = field(
        default=False,
        metadata={"help": "Put every authored record in train; val/test then hold seed+translation only."},
    )
    train_langs: list[str] | None = field(
        default=None, metadata={"help": "Keep only these languages in train (e.g. [en] for a transfer run)."}
    )
    max_length: int = field(default=256, metadata={"help": "Token limit per training example."})
    cv_folds: int | None = field(
        default=None, metadata={"help": "Grouped K-fold: the test split is fold cv_fold of K (set by python -m train.evaluate.crossval)."}
    )
    cv_fold: int = field(default=0, metadata={"help": "Which fold is the test split when cv_folds is set."})
    context_pairs: float = field(
        default=0.5,
        metadata={"help": "Extra training records per training record: the record joined with a neutral, issue-free "
                          "paragraph of its language, keeping its labels (train.data.augment). 0: off."},
    )

    def __post_init__(self) -> None:
        for key in ("val_size", "test_size"):
            value = getattr(self, key)
            if not 0.0 < value < 0.5:
                raise ConfigError(f"data.{key} must be in (0, 0.5), got {value}")
        if not self.files:
            raise ConfigError("data.files is empty: give at least one JSON Lines file or glob")
        if self.cv_folds is not None and not (2 <= self.cv_folds and 0 <= self.cv_fold < self.cv_folds):
            raise ConfigError(f"data.cv_folds must be >= 2 and 0 <= data.cv_fold < cv_folds, got "
                              f"{self.cv_folds}, {self.cv_fold}")
        if not 0.0 <= self.context_pairs <= 4.0:
            raise ConfigError(f"data.context_pairs must be in [0, 4], got {self.context_pairs}")
        if self.max_length < 8 or self.max_length > 512:
            raise ConfigError(f"data.max_length must be in [8, 512], got {self.max_length}")


@dataclass
class ModelConfig:
    backbone: str = field(
        default="bundled:multilingual-e5-small",
        metadata={"help": "bundled:<name>, a Hugging Face model id, or a local checkpoint directory."},
    )
    freeze_embeddings: bool = field(
        default=True, metadata={"help": "Freeze the (vocabulary-sized) embedding matrices."}
    )
    dropout: float | None = field(default=None, metadata={"help": "Classifier dropout; null keeps the backbone's."})
    encoder_dropout: float | None = field(
        default=None,
        metadata={"help": "Dropout inside the encoder layers (hidden states and attention probabilities); null "
                          "keeps the backbone's; the classifier's follows it unless model.dropout is set."},
    )
    attention_dropout: float | None = field(
        default=0.0,
        metadata={"help": "Dropout on the attention probabilities alone; null follows model.encoder_dropout. 0 lets "
                          "training use the fused attention kernel."},
    )
    pooling: Literal["first_token", "mean_layer"] = field(
        default="mean_layer",
        metadata={"help": "first_token: the head reads the first token's last state. mean_layer: an appended encoder "
                          "layer, initialized to mean-pool the states below (e5's pooling), feeds the head."},
    )
    train_layers: int | None = field(
        default=4,
        metadata={"help": "Train only the top K encoder layers (+ pooling layer and head); the layers below stay "
                          "frozen (see train.cache_frozen_layers). null: train every layer."},
    )

    def __post_init__(self) -> None:
        if not self.backbone.strip():
            raise ConfigError("model.backbone is empty")
        if self.train_layers is not None and self.train_layers < 1:
            raise ConfigError(f"model.train_layers must be >= 1 or null, got {self.train_layers}")
        for key in ("dropout", "encoder_dropout", "attention_dropout"):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value < 1.0:
                raise ConfigError(f"model.{key} must be in [0, 1), got {value}")


@dataclass
class LossConfig:
    issue_weight: float = field(default=1.0, metadata={"help": "Weight of the issue BCE loss."})
    stance_weight: float = field(default=1.0, metadata={"help": "Weight of the stance cross-entropy loss."})
    issue_pos_weight: bool = field(
        default=True, metadata={"help": "BCE pos_weight = negatives/positives per issue (from train)."}
    )
    stance_class_weight: bool = field(
        default=True, metadata={"help": "Balanced class weights for the stance cross-entropy (from train)."}
    )
    stance_label_smoothing: float = field(
        default=0.0, metadata={"help": "Label smoothing of the stance cross-entropy, in [0, 1)."}
    )
    consistency_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the symmetric KL between the predictions for records of one group in a batch "
                          "(translations, parallel paragraphs; batches keep groups together). 0: off."},
    )
    actor_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of an auxiliary who-reacts head (the records' optional `actor`), used in training "
                          "only, not saved. 0: off."},
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.stance_label_smoothing < 1.0:
            raise ConfigError(f"loss.stance_label_smoothing must be in [0, 1), got {self.stance_label_smoothing}")
        for key in ("consistency_weight", "actor_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")
        if self.issue_weight < 0 or self.stance_weight < 0 or self.issue_weight + self.stance_weight == 0:
            raise ConfigError(
                f"loss weights must be >= 0 and not both 0, got issue_weight={self.issue_weight}, "
                f"stance_weight={self.stance_weight}"
            )


@dataclass
class TrainConfig:
    epochs: float = field(default=2.0, metadata={"help": "Maximum number of epochs."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps (overrides epochs if > 0)."})
    batch_size: int = field(default=16, metadata={"help": "Per-device training batch size."})
    eval_batch_size: int = field(default=16, metadata={"help": "Per-device evaluation batch size."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Steps per optimizer update."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate of the encoder."})
    head_learning_rate: float | None = field(
        default=2e-3,
        metadata={"help": "Peak learning rate of the freshly initialized pooler + classifier (null: learning_rate)."},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=0.1, metadata={"help": "Fraction of steps for linear warmup."})
    scheduler: str = field(default="linear", metadata={"help": "transformers lr_scheduler_type."})
    early_stopping_patience: int = field(
        default=0, metadata={"help": "Evaluations without validation macro-F1 gain before stopping (0: off; the "
                                    "best epoch on validation is kept either way)."}
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field(
        default="auto",
        metadata={"help": "auto: bf16 where the GPU or CPU (AMX / AVX512-BF16) runs it natively, else fp32."},
    )
    group_by_length: bool = field(default=True, metadata={"help": "Batch examples of similar length."})
    logging_steps: int = field(default=10, metadata={"help": "Log training loss every N steps."})
    save_steps: int | None = field(
        default=50,
        metadata={"help": "Also save a checkpoint every N optimizer steps, so --resume loses at most N steps "
                          "(null: at epoch ends only; evaluation stays per epoch)."},
    )
    eval_max_samples: int | None = field(
        default=None,
        metadata={"help": "Cap validation examples per epoch evaluation (a seeded random subset; null: all). "
                          "Thresholds and calibration still use the whole validation split."},
    )
    dataloader_num_workers: int = field(default=0, metadata={"help": "DataLoader worker processes."})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (null: torch default)."})
    cache_frozen_layers: bool = field(
        default=True,
        metadata={"help": "With model.train_layers: run the frozen lower layers once over every split and "
                          "train the top layers on their cached output (same model, a fraction of the FLOPs)."},
    )
    fast_dropout: bool = field(
        default=True,
        metadata={"help": "On CPU, draw the dropout masks 4 per 64-bit random word (train.model.dropout; the same Bernoulli "
                          "masks, cheaper to draw). false: torch's dropout."},
    )

    def __post_init__(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "logging_steps": self.logging_steps,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {value}")
        if self.eval_max_samples is not None and self.eval_max_samples < 1:
            raise ConfigError(f"train.eval_max_samples must be >= 1 or null, got {self.eval_max_samples}")
        if self.save_steps is not None and self.save_steps < 1:
            raise ConfigError(f"train.save_steps must be >= 1 or null, got {self.save_steps}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("set train.epochs > 0 or train.max_steps > 0")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"train.learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.head_learning_rate is not None and not 0 < self.head_learning_rate < 1:
            raise ConfigError(f"train.head_learning_rate must be in (0, 1), got {self.head_learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class EvalConfig:
    enabled: bool = field(default=True, metadata={"help": "Write the evaluation report at the end of training."})
    split: str = field(default="test", metadata={"help": "Split the end-of-run report evaluates."})
    baselines: list[str] = field(
        default_factory=lambda: ["majority", "tfidf_logreg"],
        metadata={"help": "Baselines reported beside the model: majority, tfidf_logreg, embeddings_logreg (the last "
                          "embeds every text through the frozen backbone; add it later with python -m train.evaluate)."},
    )
    vector_cache: bool = field(
        default=True,
        metadata={"help": "Keep the frozen backbone's sentence vectors (embeddings_logreg baseline) in a store "
                          "($STC_VECTOR_CACHE, else ~/.cache/security-talks-classifier/vectors; train.evaluate.vector_store)."},
    )
    extra_data: list[str] = field(
        default_factory=list,
        metadata={"help": "More labeled JSONL files every run also scores, each its own report section (a missing "
                          "file is skipped with a log line; origin, source and group are optional there)."},
    )


@dataclass
class HubConfig:
    push: bool = field(default=False, metadata={"help": "Publish the run to the Hugging Face Hub at the end."})
    repo_id: str | None = field(default=None, metadata={"help": "ORG/NAME of the Hub repository."})
    private: bool = field(default=True, metadata={"help": "Create the repository as private (false: public)."})

    def __post_init__(self) -> None:
        if self.push and not self.repo_id:
            raise ConfigError("hub.push is true but hub.repo_id is not set")


@dataclass
class Config:
    name: str = field(default="default", metadata={"help": "Run name; the run goes to runs/<name>/."})
    seed: int = field(default=42, metadata={"help": "Seed for splits, initialization and data order."})
    output_dir: str | None = field(default=None, metadata={"help": "Run directory (null: runs/<name>)."})
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    def __post_init__(self) -> None:
        if self.hub.push and not self.eval.enabled:
            raise ConfigError("hub.push needs eval.enabled: the model card is built from the evaluation report")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    def data_files(self) -> list[Path]:
        """Expand `data.files` globs; a pattern that matches nothing is an error naming the key."""
        found: list[Path] = []
        for i, pattern in enumerate(self.data.files):
            matches = sorted(Path(p) for p in glob.glob(pattern))
            if not matches:
                raise ConfigError(f"data.files[{i}]: no file matches {pattern!r}")
            found.extend(m for m in matches if m not in found)
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Build a `Config` from the dataclass defaults, a YAML file (and its bases), then `key=value` overrides.

    A YAML file may name another as `base: <file>` (relative to itself): the base is read first and the
    file's keys override it, section by section; bases may chain. The run name defaults to the file's stem.

    Args:
        path: YAML file; None starts from the defaults.
        overrides: dotted `section.key=value` strings; values are parsed as YAML (`3`, `true`, `[a, b]`).

    Raises:
        ConfigError: unknown key (with a suggestion), wrong type, invalid value or missing base, naming the key.

    Example:
        >>> load_config("configs/gpu.yaml").model.pooling  # from its base, configs/default.yaml
        'mean_layer'
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}")
        raw = _read_with_bases(path, seen=[])
        raw.setdefault("name", path.stem)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"--set {key.strip()}: {value!r} is not a valid YAML value ({problem}); e.g. "
                              f"{key.strip()}=[a.jsonl, b.jsonl] for a list, quoted if it holds spaces") from None
        _set_dotted(raw, key.strip(), parsed)
    _drop_removed_keys(raw)
    return _build(Config, raw, prefix="")


def _drop_removed_keys(raw: dict[str, Any]) -> None:
    """Remove `REMOVED_KEYS` that hold their current meaning from `raw`; refuse one that asks for removed code."""
    for dotted, neutral in REMOVED_KEYS.items():
        section, key = dotted.split(".")
        node = raw.get(section)
        if not isinstance(node, dict) or key not in node:
            continue
        value = node.pop(key)
        if value != neutral:
            raise ConfigError(f"Removed config key: {dotted} (an experiment no longer in the code); only "
                              f"{yaml.safe_dump(neutral).splitlines()[0]} is accepted, got {value!r}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def _read_with_bases(path: Path, seen: list[Path]) -> dict[str, Any]:
    """The YAML mapping at `path` laid over its `base:` chain (the base key itself removed)."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in [*seen, path.resolve()])
        raise ConfigError(f"{path}: base: forms a cycle ({chain})")
    raw = _read_yaml(path)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: base must be a YAML file name, got {base!r}")
    base_path = path.parent / base
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: {base} not found (looked for {base_path})")
    inherited = _read_with_bases(base_path, [*seen, path.resolve()])
    inherited.pop("name", None)  # a run is named after the file it is started from
    return _merge(inherited, raw)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid over `base`: sections (mappings) merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" — did you mean {prefix}{close[0]}?" if close else f" (known keys: {', '.join(names)})"
            raise ConfigError(f"Unknown config key: {prefix}{key}{hint}")
    kwargs = {}
    for name in names:
        if name in raw:
            kwargs[name] = _coerce(raw[name], hints[name], f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, prefix=key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp}")
