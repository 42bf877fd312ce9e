"""Evaluation reports: `report.json` (stable schema), `report.md` (tables for people) and PNG plots.

`report.json`:
    {"split": str, "n": int, "model": str, "thresholds": {issue: float},
     "systems": {NAME: {"issues": {"micro_f1", "macro_f1", "subset_accuracy",
                                   "per_label": {LABEL: {"precision", "recall", "f1", "support"}}},
                        "stance": {"accuracy", "macro_f1", "per_label": {...}, "confusion_matrix": [[...]]},
                        "macro_f1": float, "n": int,
                        "by_lang": {LANG: {"n", "issues": {...}, "stance": {...}, "macro_f1"}},
                        "by_origin": {ORIGIN: {...same...}},
                        "english_vs_rest": {"en"|"non_en": {...same...}}}},
     "worst_errors": [{"id", "lang", "text", "gold": {...}, "predicted": {...}, "cost"}],
     "calibration": {"stance_temperature", "issue_calibration", "before"|"after": {"stance"|"issues":
                     {"ece", "reliability": {"count", "confidence", "frequency"}}}},  (see train.calibrate)
     "extra": {SECTION: {"split": file, "n", "systems", "worst_errors", "calibration"}}}   (one per `eval.extra_data` file)
with NAME in `model`, `majority`, `tfidf_logreg`, `embeddings_logreg` (those that were run).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from infer.atomic import atomic_file
from infer.labels import LabelSchema
from train.evaluate.metrics import issue_stance_metrics

logger = logging.getLogger(__name__)


def score_system(scores: np.ndarray, gold: np.ndarray, schema: LabelSchema, thresholds: Sequence[float],
                 langs: Sequence[str], origins: Sequence[str]) -> dict[str, Any]:
    """Metrics overall and broken down by language and by origin."""
    def compute(mask: np.ndarray) -> dict[str, Any]:
        return issue_stance_metrics(scores[mask], gold[mask], list(schema.issues), list(schema.stance),
                                    list(thresholds))

    langs, origins = np.asarray(langs), np.asarray(origins)
    result = compute(np.ones(len(scores), dtype=bool))
    result["by_lang"] = {lang: compute(langs == lang) for lang in sorted(set(langs))}
    result["by_origin"] = {o: compute(origins == o) for o in sorted(set(origins))}
    english = langs == "en"
    result["english_vs_rest"] = {name: compute(mask) for name, mask in (("en", english), ("non_en", ~english))
                                 if mask.any()}
    return result


def worst_errors(records: Sequence[dict], scores: np.ndarray, gold: np.ndarray, schema: LabelSchema,
                 thresholds: Sequence[float], top: int = 10) -> list[dict[str, Any]]:
    """The `top` examples with the largest confident mistakes (summed |score - gold| over wrong labels).

    One example per `group` (the worst of a paragraph's translations), so one paragraph's eight
    languages do not fill the list.
    """
    pred_issues, pred_stance = schema.decide(scores, thresholds)
    gold_issues, gold_stance = schema.decide(gold, [0.5] * len(schema.issues))
    issue_scores, stance_scores = schema.split(scores)
    wrong_issue = pred_issues != gold_issues
    cost = (np.abs(issue_scores - gold_issues) * wrong_issue).sum(1)
    cost += np.where(pred_stance != gold_stance, 1.0 - stance_scores[np.arange(len(scores)), gold_stance], 0.0)
    out, seen = [], set()
    for i in np.argsort(-cost, kind="stable"):
        group = records[i].get("group", records[i]["id"])
        if cost[i] <= 0 or len(out) == top:
            break
        if group in seen:
            continue
        seen.add(group)
        out.append({
            "id": records[i]["id"], "lang": records[i]["lang"], "text": records[i]["text"],
            "gold": {"issues": list(records[i]["issues"]), "stance": records[i]["stance"]},
            "predicted": {"issues": [n for n, p in zip(schema.issues, pred_issues[i]) if p],
                          "stance": schema.stance[pred_stance[i]]},
            "cost": round(float(cost[i]), 4),
        })
    return out


def _row(name: str, cells: Sequence[Any]) -> str:
    return "| " + " | ".join([name, *(f"{c:.3f}" if isinstance(c, float) else str(c) for c in cells)]) + " |"


def _table(header: Sequence[str], rows: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *rows, ""]


def render_markdown(report: dict[str, Any], schema: LabelSchema) -> str:
    """The main section, then one section per extra evaluation file (`report["extra"]`)."""
    text = _render_section(report, schema, f"# Evaluation report: {report['model']}")
    for name, section in report.get("extra", {}).items():
        text += "\n" + _render_section(section, schema, f"# Extra evaluation `{name}`: {report['model']}", f"{name}_")
    return text


def _render_section(report: dict[str, Any], schema: LabelSchema, title: str, prefix: str = "") -> str:
    systems = report["systems"]
    names = list(systems)
    lines = [title, "",
             f"Split `{report['split']}`, {report['n']} records. Issue thresholds: model's validation-tuned "
             "ones; baselines use 0.5.", "", "## Systems side by side", ""]
    lines += _table(["system", "issue micro-F1", "issue macro-F1", "subset acc.", "stance acc.", "stance macro-F1"],
                    [_row(n, [s["issues"]["micro_f1"], s["issues"]["macro_f1"], s["issues"]["subset_accuracy"],
                              s["stance"]["accuracy"], s["stance"]["macro_f1"]]) for n, s in systems.items()])
    lines += ["## Issue F1 per label", ""]
    lines += _table(["label", "support", *names],
                    [_row(lab, [systems[names[0]]["issues"]["per_label"][lab]["support"],
                                *(systems[n]["issues"]["per_label"][lab]["f1"] for n in names)])
                     for lab in schema.issues])
    lines += ["## Stance F1 per label", ""]
    lines += _table(["label", "support", *names],
                    [_row(lab, [systems[names[0]]["stance"]["per_label"][lab]["support"],
                                *(systems[n]["stance"]["per_label"][lab]["f1"] for n in names)])
                     for lab in schema.stance])
    for group, title in (("by_lang", "language"), ("by_origin", "origin")):
        lines += [f"## By {title} (issue macro-F1 / stance macro-F1)", ""]
        keys = list(systems[names[0]][group])
        lines += _table([title, "n", *names],
                        [_row(key, [systems[names[0]][group][key]["n"],
                                    *(f"{systems[n][group][key]['issues']['macro_f1']:.3f} / "
                                      f"{systems[n][group][key]['stance']['macro_f1']:.3f}" for n in names)])
                         for key in keys])
    if "model" in systems:
        cm = systems["model"]["stance"]["confusion_matrix"]
        lines += ["## Model stance confusion matrix (rows: gold, columns: predicted)", ""]
        lines += _table(["gold \\ predicted", *schema.stance],
                        [_row(lab, cm[i]) for i, lab in enumerate(schema.stance)])
    if "calibration" in report:
        from train.calibrate import render_calibration_markdown

        lines += render_calibration_markdown(report["calibration"], plot=f"{prefix}reliability.png")
    lines += ["## Worst errors of the model", ""]
    for e in report.get("worst_errors", []):
        text = " ".join(e["text"].split())
        lines.append(f"- `{e['id']}` ({e['lang']}): {text[:300]}{'…' if len(text) > 300 else ''}  ")
        lines.append(f"  gold: {e['gold']['issues']} / {e['gold']['stance']}; predicted: "
                     f"{e['predicted']['issues']} / {e['predicted']['stance']}")
    return "\n".join(lines) + "\n"


def write_plots(report: dict[str, Any], schema: LabelSchema, out_dir: Path, prefix: str = "") -> list[Path]:
    """stance_confusion.png, issue_f1_by_system.png, macro_f1_by_language.png (each name after `prefix`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = report["systems"]
    names = list(systems)
    paths = []
    main = systems.get("model", systems[names[0]])
    cm = np.asarray(main["stance"]["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(schema.stance)), schema.stance)
    ax.set_yticks(range(len(schema.stance)), schema.stance)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    ax.set_title("Stance confusion matrix")
    fig.tight_layout()
    paths.append(out_dir / f"{prefix}stance_confusion.png")
    _save_png(fig, paths[-1])

    for fname, keys, getter, title in (
        ("issue_f1_by_system.png", list(schema.issues),
         lambda s, k: s["issues"]["per_label"][k]["f1"], "Issue F1 by system"),
        ("macro_f1_by_language.png", list(main["by_lang"]),
         lambda s, k: s["by_lang"][k]["macro_f1"], "Macro-F1 (mean of issue and stance) by language"),
    ):
        fig, ax = plt.subplots(figsize=(max(6, len(keys) * 0.9), 3.8))
        width = 0.8 / len(names)
        for i, n in enumerate(names):
            ax.bar(np.arange(len(keys)) + i * width, [getter(systems[n], k) for k in keys], width, label=n)
        ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2, keys, rotation=20)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(out_dir / f"{prefix}{fname}")
        _save_png(fig, paths[-1])
    if "calibration" in report:
        from train.calibrate import write_reliability_diagram

        paths.append(write_reliability_diagram(report["calibration"], out_dir / f"{prefix}reliability.png"))
    return paths


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def write_report(report: dict[str, Any], schema: LabelSchema, out_dir: str | Path) -> Path:
    """Write report.json, report.md and the plots into `out_dir`, each file atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_file(out_dir / "report.json") as fh:
        json.dump(report, fh, indent=2, ensure_ascii=False)
    with atomic_file(out_dir / "report.md") as fh:
        fh.write(render_markdown(report, schema))
    write_plots(report, schema, out_dir)
    for name, section in report.get("extra", {}).items():
        write_plots(section, schema, out_dir, prefix=f"{name}_")
    logger.info("Report written to %s", out_dir / "report.md")
    return out_dir / "report.json"
