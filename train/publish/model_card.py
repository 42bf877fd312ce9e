"""The model card of a run, rendered with huggingface_hub's `ModelCard` / `ModelCardData` / `EvalResult`.

Every figure in the card comes from the run's own `report.json` and `data_summary.json`; nothing is typed in.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from infer.labels import LabelSchema
from train.backbones.bundled import BUNDLED, PREFIX
from train.config import Config, load_config
from train.data.records import DataSummary, summarize, validate_files

logger = logging.getLogger(__name__)

# The card's Jinja template (huggingface_hub renders it); its fields are filled in `build_card`.
TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def base_model(backbone: str) -> str:
    """The Hub id a backbone stands for: a bundled one's original model, else the backbone itself."""
    if backbone.startswith(PREFIX) and backbone[len(PREFIX):] in BUNDLED:
        return BUNDLED[backbone[len(PREFIX):]].hub_id
    return backbone


def trained_data_summary(run_dir: Path, cfg: Config, schema: LabelSchema) -> DataSummary:
    """The counts of the data the run was trained on (`data_summary.json`); for runs made before that
    file existed, recounted from today's data files, with a warning that they may differ."""
    path = run_dir / "data_summary.json"
    if path.is_file():
        return DataSummary(**json.loads(path.read_text(encoding="utf-8"))["all"])
    logger.warning("%s has no data_summary.json (a run made before it was saved): counting today's data files "
                   "instead, which may differ from what the run was trained on", run_dir)
    return summarize(validate_files(cfg.data_files(), schema), schema)


def build_card(run_dir: str | Path, repo_id: str | None = None):
    """Build a `huggingface_hub.ModelCard` for the run in `run_dir`.

    Example:
        >>> card = build_card("runs/default")  # doctest: +SKIP
        >>> card.data.pipeline_tag  # doctest: +SKIP
        'text-classification'
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "train_config.yaml")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    schema = LabelSchema.from_dict(config["label_schema"])
    report: dict[str, Any] = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    splits = json.loads((run_dir / "splits.json").read_text(encoding="utf-8"))
    summary = trained_data_summary(run_dir, cfg, schema)
    model = report["systems"]["model"]
    base = base_model(cfg.model.backbone)
    base = base if not Path(base).is_absolute() else Path(base).name  # a local backbone: its name, not this machine's path
    name = repo_id.split("/")[-1] if repo_id else "security-talks-classifier"
    dataset = {"dataset_type": "security-talks-paragraphs", "dataset_name": "Security-guarantee talks paragraphs",
               "dataset_split": report["split"], "task_type": "text-classification"}
    eval_results = [
        EvalResult(metric_type="f1", metric_name="issue macro-F1", metric_value=round(model["issues"]["macro_f1"], 4), **dataset),
        EvalResult(metric_type="f1", metric_name="issue micro-F1", metric_value=round(model["issues"]["micro_f1"], 4), **dataset),
        EvalResult(metric_type="f1", metric_name="stance macro-F1", metric_value=round(model["stance"]["macro_f1"], 4), **dataset),
        EvalResult(metric_type="accuracy", metric_name="stance accuracy", metric_value=round(model["stance"]["accuracy"], 4), **dataset),
    ]
    extra_sections = []
    for sec_name, part in report.get("extra", {}).items():
        extra_sections.append({
            "name": sec_name, "n": part["n"], "split": part["split"],
            "stance_header": " / ".join(f"{c} F1" for c in schema.stance),
            "rows": [{"name": n, "issues": _fmt(s["issues"]["macro_f1"]), "stance": _fmt(s["stance"]["macro_f1"]),
                      "per_class": " / ".join(_fmt(s["stance"]["per_label"][c]["f1"]) for c in schema.stance)}
                     for n, s in part["systems"].items()],
        })
        m = part["systems"]["model"]
        extra_data = {**dataset, "dataset_name": sec_name, "dataset_split": part["split"]}
        eval_results += [
            EvalResult(metric_type="f1", metric_name="issue macro-F1", metric_value=round(m["issues"]["macro_f1"], 4), **extra_data),
            EvalResult(metric_type="f1", metric_name="stance macro-F1", metric_value=round(m["stance"]["macro_f1"], 4), **extra_data),
        ]
    card_data = ModelCardData(
        model_name=name,
        language=sorted(summary.by_lang),
        license="mit",
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["text-classification", "multi-label", "stance-detection", "news", "multilingual", "security-guarantees"],
        base_model=base if "/" in base else None,
        metrics=["f1", "accuracy"],
        eval_results=eval_results,
    )
    definitions = schema.definitions or {}
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE_PATH.read_text(encoding="utf-8"),
        model_name=name,
        base_model=base,
        issue_names=", ".join(f"`{n}`" for n in schema.issues),
        stance_names=", ".join(f"`{n}`" for n in schema.stance),
        stance_target=schema.stance_target or "the stance target",
        label_rows=[{"group": g, "name": n, "definition": definitions.get(n, "")}
                    for g, names in (("issue", schema.issues), ("stance", schema.stance)) for n in names],
        repo_or_path=repo_id or f"./{run_dir.name}",  # never this machine's absolute path
        num_issues=len(schema.issues), num_stance=len(schema.stance),
        n_records=summary.n, n_langs=len(summary.by_lang),
        lang_counts=", ".join(f"{k} {v}" for k, v in summary.by_lang.items()),
        origin_counts=", ".join(f"{k} {v}" for k, v in sorted(summary.by_origin.items())),
        label_counts=", ".join(f"{k} {v}" for k, v in {**summary.issue_counts, **summary.stance_counts}.items()),
        split_sizes=", ".join(f"{k} {len(v)}" for k, v in splits.items()),
        split=report["split"], n_eval=report["n"],
        thresholds=", ".join(f"{k} {v:.2f}" for k, v in report["thresholds"].items()),
        system_rows=[{"name": n, "micro": _fmt(s["issues"]["micro_f1"]), "macro": _fmt(s["issues"]["macro_f1"]),
                      "acc": _fmt(s["stance"]["accuracy"]), "stance": _fmt(s["stance"]["macro_f1"])}
                     for n, s in report["systems"].items()],
        per_issue=", ".join(f"{k} {_fmt(v['f1'])}" for k, v in model["issues"]["per_label"].items()),
        lang_rows=[{"lang": k, "n": v["n"], "issues": _fmt(v["issues"]["macro_f1"]), "stance": _fmt(v["stance"]["macro_f1"])}
                   for k, v in model["by_lang"].items()],
        backbone=base, bundled=cfg.model.backbone.startswith("bundled:"),
        epochs=cfg.train.epochs, patience=cfg.train.early_stopping_patience, batch_size=cfg.train.batch_size,
        learning_rate=cfg.train.learning_rate, head_learning_rate=cfg.train.head_learning_rate,
        freeze=cfg.model.freeze_embeddings,
        train_layers=cfg.model.train_layers, mean_layer=cfg.model.pooling == "mean_layer",
        extra_sections=extra_sections,
    )
