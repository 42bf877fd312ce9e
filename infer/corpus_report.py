"""The corpus report behind `python -m infer ... --report DIR`: `summary.md` and PNG plots for an analyst.

Everything is drawn from the summary counted while streaming (`infer.stream.Summary.to_dict`), so a
large corpus is never read twice: issue shares (share of paragraphs carrying each issue; a paragraph
may carry several or none) and stance shares, overall, by language, by the `--group-by` column
(outlet/source) and by week of the `--date-column` (weeks start on Monday).

matplotlib is imported only inside `write_plots`: the light runtime does not need it, and a missing
matplotlib is an ImportError naming the extra to install (`security-talks-classifier[report]`).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from infer.atomic import atomic_file

logger = logging.getLogger(__name__)

TOP_GROUPS = 25  # rows of the by-group table and plot (all of them are in summary.json)


def week_start(value: Any) -> str | None:
    """Monday of the ISO week of a date (`YYYY-MM-DD...` string, date or datetime), or None if unparseable.

    Example:
        >>> week_start("2022-01-13"), week_start("2022-01-17T08:00:00Z"), week_start(""), week_start("soon")
        ('2022-01-10', '2022-01-17', None, None)
    """
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str) and len(value.strip()) >= 10:
        try:
            day = dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    else:
        return None
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _breakdown_table(blocks: dict[str, dict], schema, key_name: str, limit: int | None = None) -> list[str]:
    header = [key_name, "n", *schema.issues, "(no issue)", *schema.stance]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, b in list(blocks.items())[:limit]:
        cells = [str(key), str(b["n"]), *(_pct(b["issue_shares"][i]) for i in schema.issues),
                 _pct(b["no_issue_share"]), *(_pct(b["stance_shares"][s]) for s in schema.stance)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def render_markdown(summary: dict[str, Any], schema, plots: list[str], model: str = "") -> str:
    """`summary.md`: overall shares, then by language, by group and by week (tables of shares)."""
    n = summary["n"]
    lines = ["# Corpus summary", "",
             f"{n} paragraphs tagged{f' by `{model}`' if model else ''}. Issue share: share of paragraphs "
             "carrying the issue (a paragraph may carry several, or none); stance shares sum to 100%.", "",
             "## Overall", "", "| issue | paragraphs | share |", "|---|---|---|"]
    for i in schema.issues:
        lines.append(f"| {i} | {summary['issue_counts'][i]} | {_pct(summary['issue_shares'][i])} |")
    lines.append(f"| (no issue) | {round(summary['no_issue_share'] * n)} | {_pct(summary['no_issue_share'])} |")
    lines += ["", "| stance | paragraphs | share |", "|---|---|---|"]
    lines += [f"| {s} | {summary['stance_counts'][s]} | {_pct(summary['stance_shares'][s])} |" for s in schema.stance]
    lines.append("")
    if summary["by_lang"]:
        by_n = dict(sorted(summary["by_lang"].items(), key=lambda kv: -kv[1]["n"]))
        lines += ["## By language", ""] + _breakdown_table(by_n, schema, "lang")
    if summary.get("by_group") is not None:
        groups = summary["by_group"]
        more = f" (the {TOP_GROUPS} largest of {len(groups)}; all in summary.json)" if len(groups) > TOP_GROUPS else ""
        lines += [f"## By {summary['group_by']}{more}", ""] + _breakdown_table(groups, schema, summary["group_by"],
                                                                              TOP_GROUPS)
    if summary.get("by_week") is not None:
        lines += [f"## By week of `{summary['date_column']}` (weeks start on Monday; {summary['undated']} "
                  "paragraphs without a readable date)", ""]
        lines += _breakdown_table(summary["by_week"], schema, "week")
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(lines)


def write_plots(summary: dict[str, Any], schema, out_dir: Path) -> list[Path]:
    """overall.png, by_language.png, by_group.png (with --group-by), over_time.png (with --date-column)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("the corpus report's plots need matplotlib: pip install 'security-talks-classifier[report]' "
                          "(summary.json and summary.md were written)") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    issues, stance = list(schema.issues), list(schema.stance)
    colors = {"favor": "#c0392b", "against": "#2471a3", "neutral": "#999999"}
    paths = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        paths.append(out_dir / name)
        with atomic_file(paths[-1], "wb") as fh:  # a plot is replaced whole or not at all
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [len(issues) + 1, len(stance)]})
    a.bar(issues + ["(no issue)"], [summary["issue_shares"][i] for i in issues] + [summary["no_issue_share"]])
    a.set_title(f"Issue shares ({summary['n']} paragraphs)")
    a.tick_params(axis="x", rotation=25)
    b.bar(stance, [summary["stance_shares"][s] for s in stance], color=[colors.get(s, None) for s in stance])
    b.set_title("Stance shares")
    for ax in (a, b):
        ax.set_ylim(0, 1)
    save(fig, "overall.png")

    def breakdown(blocks: dict[str, dict], title: str, name: str) -> None:
        keys = list(blocks)[:TOP_GROUPS]
        height = max(3.0, 0.32 * len(keys) + 1.2)
        fig, (a, b) = plt.subplots(1, 2, figsize=(12, height), sharey=True)
        grid = np.array([[blocks[k]["issue_shares"][i] for i in issues] for k in keys])
        a.imshow(grid, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        a.set_xticks(range(len(issues)), issues, rotation=25)
        a.set_yticks(range(len(keys)), [f"{k} (n={blocks[k]['n']})" for k in keys])
        for (r, c), v in np.ndenumerate(grid):
            a.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 else "black")
        a.set_title(f"Issue shares (%) by {title}")
        left = np.zeros(len(keys))
        for s in stance:
            vals = np.array([blocks[k]["stance_shares"][s] for k in keys])
            b.barh(range(len(keys)), vals, left=left, color=colors.get(s, None), label=s)
            left += vals
        b.set_xlim(0, 1)
        b.set_title(f"Stance shares by {title}")
        b.legend(fontsize=8, loc="lower right")
        save(fig, name)

    if summary["by_lang"]:
        breakdown(dict(sorted(summary["by_lang"].items(), key=lambda kv: -kv[1]["n"])), "language", "by_language.png")
    if summary.get("by_group"):
        breakdown(summary["by_group"], summary["group_by"], "by_group.png")
    if summary.get("by_week"):
        weeks = list(summary["by_week"])
        x = [dt.date.fromisoformat(w) for w in weeks]
        blocks = [summary["by_week"][w] for w in weeks]
        fig, (a, b, c) = plt.subplots(3, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [1, 2, 2]})
        a.bar(x, [bl["n"] for bl in blocks], width=6, align="edge")  # each bar spans its week, Monday on
        a.set_ylabel("paragraphs")
        a.set_title(f"By week of {summary['date_column']}")
        for i in issues:
            b.plot(x, [bl["issue_shares"][i] for bl in blocks], marker="o", label=i)
        b.set_ylabel("issue share")
        b.set_ylim(0, 1)
        b.legend(fontsize=8, ncol=3)
        c.stackplot(x, *[[bl["stance_shares"][s] for bl in blocks] for s in stance], labels=stance,
                    colors=[colors.get(s, None) for s in stance])
        c.set_ylabel("stance share")
        c.set_ylim(0, 1)
        c.legend(fontsize=8, loc="upper left")
        fig.autofmt_xdate()
        save(fig, "over_time.png")
    return paths


def write_corpus_report(summary: dict[str, Any], schema, out_dir: str | Path, model: str = "") -> list[Path]:
    """Write `summary.md` and the plots into `out_dir` (each file replaced atomically); return the paths.

    `summary.md` is written before the plots are drawn, so a machine without matplotlib still gets it
    (and then an ImportError naming the extra to install).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def write_md(plots: list[str]) -> Path:
        with atomic_file(out_dir / "summary.md") as fh:
            fh.write(render_markdown(summary, schema, plots, model))
        return out_dir / "summary.md"

    md = write_md([])
    final = write_plots(summary, schema, out_dir)
    write_md([p.name for p in final])
    logger.info("Corpus report written to %s", md)
    return [md, *final]
