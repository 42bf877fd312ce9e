"""`main(args)` behind `python -m infer`: load, stream, write output atomically, optional report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from infer import load
from infer.stream import Summary, detect_format, read_rows, tag_stream

logger = logging.getLogger(__name__)


def _write_report(report_dir: Path, clf, summary, gold: list) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    tmp = report_dir / "summary.json.tmp"
    tmp.write_text(json.dumps(summary.to_dict(clf.schema), indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(report_dir / "summary.json")
    from infer.corpus_report import write_corpus_report  # matplotlib is imported only inside it

    write_corpus_report(summary.to_dict(clf.schema), clf.schema, report_dir,
                        model=str(getattr(clf.model.config, "_name_or_path", "")))
    if not gold:
        return
    try:
        from train.data import encode_labels
        from train.report import score_system, worst_errors, write_report
    except ImportError as exc:  # the report code lives in the `train` extra
        raise SystemExit(f"--report with gold labels needs the train extra: pip install 'security-talks-classifier[train]' ({exc})")
    rows = [row for row, _ in gold]
    preds = [pred for _, pred in gold]
    schema = clf.schema
    scores = np.array([[p.issue_scores[n] for n in schema.issues] + [p.stance_scores[n] for n in schema.stance]
                       for p in preds])
    labels = np.array([encode_labels(r["issues"], r["stance"], schema) for r in rows], dtype=float)
    records = [{"id": r.get("id", str(i)), "lang": r.get("lang", "?"), "text": p.text, "issues": r["issues"],
                "stance": r["stance"]} for i, (r, p) in enumerate(gold)]
    langs = [r["lang"] for r in records]
    origins = [r.get("origin", "unknown") for r in rows]
    report = {
        "split": "input", "n": len(rows), "model": str(getattr(clf.model.config, "_name_or_path", "model")),
        "thresholds": dict(zip(schema.issues, map(float, clf.raw_thresholds))),
        "systems": {"model": score_system(scores, labels, schema, clf.thresholds, langs, origins)},
        "worst_errors": worst_errors(records, scores, labels, schema, clf.thresholds),
    }
    write_report(report, schema, report_dir)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        clf = load(args.model, device=args.device, route=args.route)
        fmt = detect_format(args.input, args.input_format)
        rows = read_rows(args.input, fmt, args.text_column)
        gold: list | None = [] if args.report else None
        extra = {"explain": args.explain,  # options of the analyst features (infer.evidence, corpus_report)
                 "summary": Summary(group_by=args.group_by, date_column=args.date_column)}
        if args.select_for_labeling:
            from infer.selection import run_selection

            return run_selection(clf, rows, args)
        if args.output == "-":
            summary = tag_stream(clf, rows, sys.stdout, text_column=args.text_column, document=args.document,
                                 out_format=args.out_format, num_shards=args.num_shards, shard_index=args.shard_index,
                                 batch_size=args.batch_size, gold=gold, progress=not args.no_progress, **extra)
        else:
            out = Path(args.output)
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent or ".")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    summary = tag_stream(clf, rows, fh, text_column=args.text_column, document=args.document,
                                         out_format=args.out_format, num_shards=args.num_shards,
                                         shard_index=args.shard_index, batch_size=args.batch_size, gold=gold,
                                         progress=not args.no_progress, **extra)
                os.replace(tmp, out)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        if args.report:
            _write_report(Path(args.report), clf, summary, gold)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
